package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// bulkContacts reads users with their preferences and devices: a row per
// device, or one with NULL device columns for a user without any. It is
// one query, so one read transaction: a consistent view, and one pass
// over a page cache that commits in between would have emptied. The ids
// go in as one JSON array through json_each, so its text does not depend
// on their count and it stays prepared in the statement cache.
var bulkContacts = `SELECT ` + storeutil.Qualified("u", userColumns) + `, p.doc,
		d.id, d.platform, d.token, d.subscription, d.status, d.created_at
	FROM users u
	LEFT JOIN preferences p ON p.app_id = u.app_id AND p.user_id = u.id
	LEFT JOIN devices d ON d.app_id = u.app_id AND d.user_id = u.id
	WHERE u.app_id = ? AND u.id IN (SELECT value FROM json_each(?))
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
	arg, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	rows, err := s.read.QueryContext(ctx, bulkContacts, appID, string(arg))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var doc, devID, platform, token, sub, status sql.NullString
		var created sql.NullInt64
		u, err := scanUser(moreColumns{rows, []any{&doc, &devID, &platform, &token, &sub, &status, &created}})
		if err != nil {
			return err
		}
		c, seen := out[u.ID]
		if !seen {
			c.User = u
			if doc.Valid {
				if err := json.Unmarshal([]byte(doc.String), &c.Preferences); err != nil {
					return err
				}
			}
		}
		if devID.Valid {
			d := herald.Device{AppID: u.AppID, ID: devID.String, UserID: u.ID, Platform: herald.Platform(platform.String),
				Token: token.String, Status: status.String, CreatedAt: fromUS(created.Int64)}
			if d.Subscription, err = decodeSubscription(sub); err != nil {
				return err
			}
			c.Devices = append(c.Devices, d)
		}
		out[u.ID] = c
	}
	return rows.Err()
}
