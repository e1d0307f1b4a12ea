package tmpl_test

import (
	"encoding/json"
	"strconv"
)

func jsonNumber(s string) json.Number { return json.Number(s) }

func itoa(i int) string { return strconv.Itoa(i) }
