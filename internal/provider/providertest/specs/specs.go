// Package specs holds the providers' official API descriptions, unmodified
// (see SOURCES.md), for the fake servers to validate requests against.
package specs

import _ "embed"

// TwilioAPI is Twilio's OpenAPI description of the 2010-04-01 REST API.
//
//go:embed twilio_api_v2010.json
var TwilioAPI []byte

// SendGridMail is SendGrid's OpenAPI description of v3 Mail Send.
//
//go:embed tsg_mail_v3.json
var SendGridMail []byte

// FCM is Google's discovery document of the FCM HTTP v1 API (not OpenAPI).
//
//go:embed fcm.v1.json
var FCM []byte
