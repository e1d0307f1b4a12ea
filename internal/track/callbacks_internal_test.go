package track

import (
	"testing"

	"github.com/heraldhq/herald"
)

func TestTwilioReason(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]string{
		"30005": herald.ReasonInvalidRecipient, "30006": herald.ReasonInvalidRecipient, "21211": herald.ReasonInvalidRecipient,
		"21614": herald.ReasonInvalidRecipient, "21610": herald.ReasonOptedOut, "30004": herald.ReasonOptedOut,
		"30003": herald.ReasonProviderRejected, "30007": herald.ReasonProviderRejected, "": herald.ReasonProviderRejected,
	} {
		if got := twilioReason(code); got != want {
			t.Errorf("twilioReason(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestDroppedReason(t *testing.T) {
	t.Parallel()
	for reason, want := range map[string]string{
		"Bounced Address": herald.ReasonInvalidRecipient, "Invalid": herald.ReasonInvalidRecipient,
		"Unsubscribed Address": herald.ReasonOptedOut, "Spam Reporting Address": herald.ReasonOptedOut,
		"Invalid SMTPAPI header": herald.ReasonProviderRejected, "Spam Content": herald.ReasonProviderRejected, "Recipient List over Package Quota": herald.ReasonProviderRejected,
	} {
		if got := droppedReason(reason); got != want {
			t.Errorf("droppedReason(%q) = %q, want %q", reason, got, want)
		}
	}
}
