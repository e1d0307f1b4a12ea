package storeutil

import (
	"strings"

	"github.com/heraldhq/herald"
)

// SMSBudgetStep applies the reservation of n SMS to a day's count (used,
// with its warned and exceeded flags) under budget, and returns the new
// count and flags with the outcome. Both stores call it inside a
// transaction that holds the day's row, so the count is exact across
// processes and each alert fires once per day.
func SMSBudgetStep(used int, warned, exceeded bool, n, budget int) (newUsed int, newWarned, newExceeded bool, use herald.SMSBudgetUse) {
	newUsed, newWarned, newExceeded = used, warned, exceeded
	if used+n <= budget {
		newUsed = used + n
		use.Reserved = true
	}
	use.Used = newUsed
	// 80%, rounded up: a budget of 10 warns at the 8th SMS.
	if !warned && newUsed*5 >= budget*4 {
		newWarned, use.Warn = true, true
	}
	if !exceeded && (newUsed >= budget || !use.Reserved) {
		newExceeded, use.Exceeded = true, true
	}
	return newUsed, newWarned, newExceeded, use
}

// JoinCountries and SplitCountries store an app's SMS regions as one
// comma-separated column.
func JoinCountries(cs []string) string { return strings.Join(cs, ",") }

// SplitCountries is the inverse of JoinCountries; "" is no region.
func SplitCountries(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
