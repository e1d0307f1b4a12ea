package httpapi

import (
	"net/http/pprof"

	"github.com/heraldhq/herald"
	adminui "github.com/heraldhq/herald/internal/admin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes lists every route of the API. docs/openapi.yaml documents each
// of them; keep the two in step.
func (s *server) routes() {
	m := s.mux
	admin, send := herald.ScopeAdmin, herald.ScopeSend

	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	m.HandleFunc("GET /openapi.yaml", s.openAPI)
	// The web UI: static pages that call /v1 from the browser with the key
	// an operator pastes, so they need no authentication of their own.
	ui := adminui.Handler()
	m.Handle("GET /admin", ui)
	m.Handle("GET /admin/", ui)
	if s.pprof {
		// Operator-only diagnostics, not part of the API (not in
		// openapi.yaml): mounted only with --pprof.
		m.HandleFunc("GET /debug/pprof/", pprof.Index) // also serves heap, allocs, goroutine, block, mutex…
		m.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		m.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		m.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		m.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		m.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}

	m.Handle("POST /v1/keys", s.v1(admin, s.createKey))
	m.Handle("GET /v1/keys", s.v1(admin, s.listKeys))
	m.Handle("POST /v1/keys/{id}/rotate", s.v1(admin, s.rotateKey))
	m.Handle("DELETE /v1/keys/{id}", s.v1(admin, s.revokeKey))

	m.Handle("POST /v1/users/import", s.v1(admin, s.importUsers))
	m.Handle("PUT /v1/users/{user_id}", s.v1(admin, s.putUser))
	m.Handle("GET /v1/users/{user_id}", s.v1(admin, s.getUser))
	m.Handle("DELETE /v1/users/{user_id}", s.v1(admin, s.deleteUser))
	m.Handle("POST /v1/users/{user_id}/devices", s.v1(admin, s.addDevice))
	m.Handle("GET /v1/users/{user_id}/devices", s.v1(admin, s.listDevices))
	m.Handle("DELETE /v1/users/{user_id}/devices/{device_id}", s.v1(admin, s.deleteDevice))
	m.Handle("GET /v1/users/{user_id}/preferences", s.v1(admin, s.getPreferences))
	m.Handle("PUT /v1/users/{user_id}/preferences", s.v1(admin, s.putPreferences))

	m.Handle("POST /v1/notifications", s.gate(s.v1(send, s.sendNotification)))
	m.Handle("GET /v1/notifications", s.v1(send, s.listNotifications))
	m.Handle("GET /v1/notifications/{id}", s.v1(send, s.getNotification))
	m.Handle("DELETE /v1/notifications/{id}", s.v1(send, s.cancelNotification))
	m.Handle("POST /v1/email/send", s.gate(s.v1(send, s.channelSend(herald.ChannelEmail))))
	m.Handle("POST /v1/sms/send", s.gate(s.v1(send, s.channelSend(herald.ChannelSMS))))
	m.Handle("POST /v1/push/send", s.gate(s.v1(send, s.channelSend(herald.ChannelPush))))

	m.Handle("PUT /v1/categories/{name}", s.v1(admin, s.putCategory))
	m.Handle("GET /v1/categories/{name}", s.v1(admin, s.getCategory))
	m.Handle("GET /v1/categories", s.v1(admin, s.listCategories))

	m.Handle("GET /v1/analytics", s.v1(admin, s.getAnalytics))
	m.Handle("GET /v1/stats", s.v1(admin, s.getStats))

	m.Handle("GET /v1/dead-letters", s.v1(send, s.listDeadLetters))
	m.Handle("POST /v1/dead-letters/{delivery_id}/replay", s.v1(admin, s.replayDeadLetter))

	m.Handle("PUT /v1/providers/{channel}", s.v1(admin, s.putProviders))
	m.Handle("GET /v1/providers/{channel}", s.v1(admin, s.getProviders))

	m.Handle("PUT /v1/templates/{name}", s.v1(admin, s.putTemplate))
	m.Handle("GET /v1/templates/{name}", s.v1(admin, s.getTemplate))
	m.Handle("GET /v1/templates", s.v1(admin, s.listTemplates))
	m.Handle("DELETE /v1/templates/{name}", s.v1(admin, s.deleteTemplate))
	m.Handle("POST /v1/templates/{name}/preview", s.v1(admin, s.previewTemplate))

	m.Handle("PUT /v1/topics/{name}/subscribers", s.v1(admin, s.putSubscribers))
	m.Handle("GET /v1/topics/{name}/subscribers", s.v1(admin, s.listSubscribers))
	m.Handle("GET /v1/topics/{name}", s.v1(admin, s.getTopic))

	m.Handle("GET /v1/app", s.v1(admin, s.getApp))
	m.Handle("PUT /v1/app", s.v1(admin, s.putApp))

	m.Handle("POST /v1/webhooks", s.v1(admin, s.createWebhook))
	m.Handle("GET /v1/webhooks", s.v1(admin, s.listWebhooks))
	m.Handle("DELETE /v1/webhooks/{id}", s.v1(admin, s.deleteWebhook))

	// Outside /v1, without an API key: verified by signature or token.
	if s.tracking != nil {
		s.trackingRoutes()
	}
}
