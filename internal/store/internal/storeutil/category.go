package storeutil

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
)

// storedCap is a frequency cap as both stores keep it, in a JSON array.
type storedCap struct {
	Channel string `json:"channel"`
	Max     int    `json:"max"`
	Per     int64  `json:"per_ms"`
	Over    string `json:"over"`
}

type storedDigest struct {
	Window   int64  `json:"window_ms"`
	Template string `json:"template"`
}

// EncodeCategory returns the category's caps and digest as stored: a JSON
// array, and a JSON object or nil.
func EncodeCategory(c herald.Category) (caps, digest []byte, err error) {
	list := make([]storedCap, 0, len(c.FrequencyCaps))
	for _, fc := range c.FrequencyCaps {
		list = append(list, storedCap{Channel: string(fc.Channel), Max: fc.Max, Per: fc.Per.Milliseconds(), Over: fc.Over})
	}
	if caps, err = json.Marshal(list); err != nil {
		return nil, nil, err
	}
	if c.Digest != nil {
		if digest, err = json.Marshal(storedDigest{Window: c.Digest.Window.Milliseconds(), Template: c.Digest.Template}); err != nil {
			return nil, nil, err
		}
	}
	return caps, digest, nil
}

// DecodeCategory fills c's caps and digest from their stored form.
func DecodeCategory(c *herald.Category, caps, digest []byte) error {
	var list []storedCap
	if err := json.Unmarshal(caps, &list); err != nil {
		return fmt.Errorf("frequency caps of category %q: %w", c.Name, err)
	}
	c.FrequencyCaps = nil
	for _, s := range list {
		c.FrequencyCaps = append(c.FrequencyCaps, herald.FrequencyCap{Channel: herald.Channel(s.Channel), Max: s.Max,
			Per: time.Duration(s.Per) * time.Millisecond, Over: s.Over})
	}
	c.Digest = nil
	if len(digest) > 0 {
		var d storedDigest
		if err := json.Unmarshal(digest, &d); err != nil {
			return fmt.Errorf("digest of category %q: %w", c.Name, err)
		}
		c.Digest = &herald.Digest{Window: time.Duration(d.Window) * time.Millisecond, Template: d.Template}
	}
	return nil
}
