package validate_test

import (
	"testing"

	"github.com/heraldhq/herald/internal/validate"
)

func BenchmarkEmail(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := validate.Email("ada.lovelace+orders@mail.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPhone parses and formats a number to E.164 (libphonenumber's metadata).
func BenchmarkPhone(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := validate.Phone("+14155550100"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCategory(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := validate.Category("order-updates"); err != nil {
			b.Fatal(err)
		}
	}
}
