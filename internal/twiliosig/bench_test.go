package twiliosig

import (
	"fmt"
	"net/url"
	"testing"
)

const benchToken = "0123456789abcdef0123456789abcdef"

// benchForm is a typical 12-parameter voice webhook form, as Twilio posts
// it to the number's voice URL.
func benchForm() url.Values {
	return url.Values{
		"AccountSid":  {"AC0123456789abcdef0123456789abcdef"},
		"ApiVersion":  {"2010-04-01"},
		"CallSid":     {"CA0123456789abcdef0123456789abcdef"},
		"CallStatus":  {"ringing"},
		"Direction":   {"inbound"},
		"From":        {"+15551230001"},
		"To":          {"+15559870000"},
		"Caller":      {"+15551230001"},
		"Called":      {"+15559870000"},
		"CallerName":  {"Pat Customer"},
		"FromCity":    {"SAN FRANCISCO"},
		"FromCountry": {"US"},
	}
}

// BenchmarkValid checks a signature on the 12-parameter form: a genuine
// one (one HMAC), and a forged one, which is also tried with the default
// port added (two HMACs) before it is refused.
func BenchmarkValid(b *testing.B) {
	const fullURL = "https://wt.example.com/conference/connect/client"
	form := benchForm()
	good := Sign(benchToken, fullURL, form)
	for _, tc := range []struct {
		name, sig string
		want      bool
	}{
		{"valid", good, true},
		{"forged", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if Valid(benchToken, fullURL, form, tc.sig) != tc.want {
					b.Fatal("unexpected result")
				}
			}
		})
	}
}

// BenchmarkValidParams shows how validation grows with the form's size.
func BenchmarkValidParams(b *testing.B) {
	const fullURL = "https://wt.example.com/voice/status?leg=42"
	for _, n := range []int{4, 12, 32} {
		form := url.Values{}
		for i := range n {
			form.Set(fmt.Sprintf("Param%02d", i), fmt.Sprintf("value-%d-0123456789", i))
		}
		sig := Sign(benchToken, fullURL, form)
		b.Run(fmt.Sprintf("params=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !Valid(benchToken, fullURL, form, sig) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
