package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/netguard"
	"github.com/heraldhq/herald/internal/validate"
)

type addDeviceRequest struct {
	Platform     string               `json:"platform"`
	Token        string               `json:"token"`
	Subscription *subscriptionRequest `json:"subscription"`
}

type subscriptionRequest struct {
	Endpoint string `json:"endpoint"`
	// ExpirationTime is part of the browser's PushSubscription JSON, so a
	// client can post subscription.toJSON() as it is; it is not used.
	ExpirationTime *float64 `json:"expirationTime"`
	Keys           struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

type deviceResponse struct {
	ID           string                `json:"id"`
	Platform     string                `json:"platform"`
	Token        string                `json:"token,omitempty"`
	Subscription *subscriptionResponse `json:"subscription,omitempty"`
	Status       string                `json:"status"`
	CreatedAt    time.Time             `json:"created_at"`
}

// subscriptionResponse shows only the endpoint: the keys are the user's
// encryption material and no client needs them back.
type subscriptionResponse struct {
	Endpoint string `json:"endpoint"`
}

type deviceListResponse struct {
	Data []deviceResponse `json:"data"`
}

func toDeviceResponse(d herald.Device) deviceResponse {
	out := deviceResponse{ID: d.ID, Platform: string(d.Platform), Status: d.Status, CreatedAt: d.CreatedAt.UTC()}
	if out.Status == "" {
		out.Status = herald.DeviceActive
	}
	if d.Platform == herald.PlatformWeb {
		endpoint := d.Token
		if d.Subscription != nil && d.Subscription.Endpoint != "" {
			endpoint = d.Subscription.Endpoint
		}
		out.Subscription = &subscriptionResponse{Endpoint: endpoint}
	} else {
		out.Token = d.Token
	}
	return out
}

func (s *server) addDevice(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	var req addDeviceRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	d, err := deviceFromRequest(req)
	if err != nil {
		return err
	}
	if d.Subscription != nil && !s.allowPrivate {
		// The sender refuses such an endpoint too; refusing it here tells
		// the caller now rather than as a failed delivery later.
		if u, err := url.Parse(d.Subscription.Endpoint); err == nil {
			if reason := netguard.HostReason(u.Hostname()); reason != "" {
				return herald.Invalid("subscription.endpoint", "is "+reason+"; private targets are not allowed")
			}
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("httpapi: device id: %w", err)
	}
	d.AppID, d.ID, d.UserID, d.Status, d.CreatedAt = caller.AppID, id.String(), userID, herald.DeviceActive, s.now().UTC()
	got, err := s.store.AddDevice(r.Context(), d)
	if err != nil {
		return fmt.Errorf("httpapi: add device for user %q: %w", userID, err)
	}
	// The store returns the existing device when the token was already
	// registered for this user: that is not a creation.
	status := http.StatusCreated
	if got.ID != d.ID {
		status = http.StatusOK
	}
	s.writeJSON(w, r, status, toDeviceResponse(got))
	return nil
}

// deviceFromRequest checks the platform-specific shape of a device.
func deviceFromRequest(req addDeviceRequest) (herald.Device, error) {
	var v herald.Validation
	p := herald.Platform(req.Platform)
	d := herald.Device{Platform: p}
	switch {
	case !p.Valid():
		v.Add("platform", "must be %q, %q or %q", herald.PlatformIOS, herald.PlatformAndroid, herald.PlatformWeb)
	case p == herald.PlatformWeb:
		if req.Token != "" {
			v.Add("token", "web devices take a subscription, not a token")
		}
		if req.Subscription == nil {
			v.Add("subscription", "is required for web devices")
			break
		}
		sub := req.Subscription
		if err := validate.WebPushEndpoint(sub.Endpoint); err != nil {
			v.Add("subscription.endpoint", "%s", err.Error())
		}
		if err := validate.WebPushP256dh(sub.Keys.P256dh); err != nil {
			v.Add("subscription.keys.p256dh", "%s", err.Error())
		}
		if err := validate.WebPushAuth(sub.Keys.Auth); err != nil {
			v.Add("subscription.keys.auth", "%s", err.Error())
		}
		ws := &herald.WebPushSubscription{Endpoint: sub.Endpoint}
		ws.Keys.P256dh, ws.Keys.Auth = sub.Keys.P256dh, sub.Keys.Auth
		d.Token, d.Subscription = sub.Endpoint, ws
	default:
		if req.Subscription != nil {
			v.Add("subscription", "is only for web devices")
		}
		if req.Token == "" {
			v.Add("token", "is required for %s devices", p)
		} else if err := validate.DeviceToken(p, req.Token); err != nil {
			v.Add("token", "%s", err.Error())
		}
		d.Token = req.Token
	}
	return d, v.Err()
}

func (s *server) listDevices(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	// ListDevices of an unknown user is an empty list; the API answers 404
	// so that a typo in the id is not mistaken for a user without devices.
	if _, err := s.store.GetUser(r.Context(), caller.AppID, userID); err != nil {
		return fmt.Errorf("httpapi: list devices of user %q: %w", userID, err)
	}
	list, err := s.store.ListDevices(r.Context(), caller.AppID, userID)
	if err != nil {
		return fmt.Errorf("httpapi: list devices of user %q: %w", userID, err)
	}
	out := deviceListResponse{Data: make([]deviceResponse, 0, len(list))}
	for _, d := range list {
		out.Data = append(out.Data, toDeviceResponse(d))
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

func (s *server) deleteDevice(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	id := r.PathValue("device_id")
	if err := s.store.DeleteDevice(r.Context(), caller.AppID, userID, id); err != nil {
		return fmt.Errorf("httpapi: delete device %q of user %q: %w", id, userID, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
