package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// bulkContacts reads users with their preferences and devices: a row per
// device, or one with NULL device columns for a user without any. One
// query, so one snapshot of the three tables.
var bulkContacts = `SELECT ` + storeutil.Qualified("u", userColumns) + `, p.doc,
		d.id, d.platform, d.token, d.subscription, d.status, d.created_at
	FROM users u
	LEFT JOIN preferences p ON p.app_id = u.app_id AND p.user_id = u.id
	LEFT JOIN devices d ON d.app_id = u.app_id AND d.user_id = u.id
	WHERE u.app_id = $1 AND u.id = ANY($2::text[])
	ORDER BY u.id, d.created_at, d.id`

// GetUserContacts implements herald.ContactStore: one query per chunk of ids.
func (s *Store) GetUserContacts(ctx context.Context, appID string, userIDs []string) (map[string]herald.UserContacts, error) {
	out := make(map[string]herald.UserContacts, len(userIDs))
	for _, chunk := range storeutil.IDChunks(userIDs) {
		if err := s.readContacts(ctx, appID, chunk, out); err != nil {
			return nil, wrap(err, "get contacts of %d users of app %q", len(userIDs), appID)
		}
	}
	return out, nil
}

func (s *Store) readContacts(ctx context.Context, appID string, ids []string, out map[string]herald.UserContacts) error {
	rows, err := s.pool.Query(ctx, bulkContacts, appID, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var doc, sub []byte
		var devID, platform, token, status *string
		var created *time.Time
		u, err := scanUser(rows, &doc, &devID, &platform, &token, &sub, &status, &created)
		if err != nil {
			return err
		}
		c, seen := out[u.ID]
		if !seen {
			c.User = u
			if len(doc) > 0 {
				if err := json.Unmarshal(doc, &c.Preferences); err != nil {
					return err
				}
			}
		}
		if devID != nil {
			d := herald.Device{AppID: u.AppID, ID: *devID, UserID: u.ID, Platform: herald.Platform(*platform),
				Token: *token, Status: *status, CreatedAt: created.UTC()}
			if d.Subscription, err = decodeSubscription(sub); err != nil {
				return err
			}
			c.Devices = append(c.Devices, d)
		}
		out[u.ID] = c
	}
	return rows.Err()
}
