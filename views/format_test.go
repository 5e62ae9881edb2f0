package views

import (
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{name: "zero", d: 0, want: "0:00"},
		{name: "negative clock skew", d: -5 * time.Second, want: "0:00"},
		{name: "seconds", d: 9*time.Second + 900*time.Millisecond, want: "0:09"},
		{name: "minutes", d: 12*time.Minute + 5*time.Second, want: "12:05"},
		{name: "just under an hour", d: time.Hour - time.Second, want: "59:59"},
		{name: "an hour", d: time.Hour, want: "1:00:00"},
		{name: "hours", d: 26*time.Hour + 3*time.Minute + 4*time.Second, want: "26:03:04"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatDuration(tt.d); got != tt.want {
				t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestEndReason(t *testing.T) {
	tests := []struct{ reason, want string }{
		{reason: "", want: "—"},
		{reason: "caller-hung-up", want: "Caller hung up"},
		{reason: "conference-ended-via-api", want: "Hung up by an agent"},
		{reason: "participant-with-end-conference-on-exit-left", want: "Last agent left"},
		{reason: "last-participant-left", want: "Everyone left"},
		{reason: "some_new-reason", want: "Some new reason"},
	}
	for _, tt := range tests {
		if got := endReason(tt.reason); got != tt.want {
			t.Errorf("endReason(%q) = %q, want %q", tt.reason, got, tt.want)
		}
	}
}

func TestURLWithoutRequestData(t *testing.T) {
	if got := url(t.Context(), "home"); got != "" {
		t.Errorf("url without RequestData = %q, want empty", got)
	}
}
