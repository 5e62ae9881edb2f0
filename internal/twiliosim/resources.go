package twiliosim

import "strconv"

// Twilio's JSON shapes for the REST API, with the field names twilio-go
// decodes. Nullable fields are pointers so they encode as null.

type callResource struct {
	SID             string            `json:"sid"`
	DateCreated     string            `json:"date_created"`
	DateUpdated     string            `json:"date_updated"`
	ParentCallSID   *string           `json:"parent_call_sid"`
	AccountSID      string            `json:"account_sid"`
	To              string            `json:"to"`
	ToFormatted     string            `json:"to_formatted"`
	From            string            `json:"from"`
	FromFormatted   string            `json:"from_formatted"`
	PhoneNumberSID  *string           `json:"phone_number_sid"`
	Status          string            `json:"status"`
	StartTime       *string           `json:"start_time"`
	EndTime         *string           `json:"end_time"`
	Duration        *string           `json:"duration"`
	Price           *string           `json:"price"`
	PriceUnit       string            `json:"price_unit"`
	Direction       string            `json:"direction"`
	AnsweredBy      *string           `json:"answered_by"`
	APIVersion      string            `json:"api_version"`
	ForwardedFrom   *string           `json:"forwarded_from"`
	GroupSID        *string           `json:"group_sid"`
	CallerName      *string           `json:"caller_name"`
	QueueTime       string            `json:"queue_time"`
	TrunkSID        *string           `json:"trunk_sid"`
	URI             string            `json:"uri"`
	SubresourceURIs map[string]string `json:"subresource_uris"`
}

type conferenceResource struct {
	AccountSID              string            `json:"account_sid"`
	DateCreated             string            `json:"date_created"`
	DateUpdated             string            `json:"date_updated"`
	APIVersion              string            `json:"api_version"`
	FriendlyName            string            `json:"friendly_name"`
	Region                  string            `json:"region"`
	SID                     string            `json:"sid"`
	Status                  string            `json:"status"`
	URI                     string            `json:"uri"`
	SubresourceURIs         map[string]string `json:"subresource_uris"`
	ReasonConferenceEnded   *string           `json:"reason_conference_ended"`
	CallSIDEndingConference *string           `json:"call_sid_ending_conference"`
}

type participantResource struct {
	AccountSID             string  `json:"account_sid"`
	CallSID                string  `json:"call_sid"`
	Label                  *string `json:"label"`
	CallSIDToCoach         *string `json:"call_sid_to_coach"`
	Coaching               bool    `json:"coaching"`
	ConferenceSID          string  `json:"conference_sid"`
	DateCreated            string  `json:"date_created"`
	DateUpdated            string  `json:"date_updated"`
	EndConferenceOnExit    bool    `json:"end_conference_on_exit"`
	Muted                  bool    `json:"muted"`
	Hold                   bool    `json:"hold"`
	StartConferenceOnEnter bool    `json:"start_conference_on_enter"`
	Status                 string  `json:"status"`
	QueueTime              *string `json:"queue_time"`
	URI                    string  `json:"uri"`
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Sim) accountPath() string {
	return "/" + APIVersion + "/Accounts/" + s.cfg.AccountSID
}

func (s *Sim) callJSONLocked(c *call) callResource {
	base := s.accountPath() + "/Calls/" + c.sid
	r := callResource{
		SID:           c.sid,
		DateCreated:   rfc2822(c.created),
		DateUpdated:   rfc2822(c.updated),
		ParentCallSID: strp(c.parentSID),
		AccountSID:    s.cfg.AccountSID,
		To:            c.to,
		ToFormatted:   c.to,
		From:          c.from,
		FromFormatted: c.from,
		Status:        c.status,
		StartTime:     strp(rfc2822(c.started)),
		EndTime:       strp(rfc2822(c.endedAt)),
		PriceUnit:     "USD",
		Direction:     c.direction,
		APIVersion:    APIVersion,
		CallerName:    strp(c.callerName),
		QueueTime:     "0",
		URI:           base + ".json",
		SubresourceURIs: map[string]string{
			"notifications": base + "/Notifications.json",
			"recordings":    base + "/Recordings.json",
			"events":        base + "/Events.json",
		},
	}
	if c.ended() {
		d := strconv.Itoa(c.durationSeconds())
		r.Duration = &d
	}
	return r
}

func (s *Sim) conferenceJSONLocked(conf *conference) conferenceResource {
	base := s.accountPath() + "/Conferences/" + conf.sid
	return conferenceResource{
		AccountSID:   s.cfg.AccountSID,
		DateCreated:  rfc2822(conf.created),
		DateUpdated:  rfc2822(conf.updated),
		APIVersion:   APIVersion,
		FriendlyName: conf.name,
		Region:       "us1",
		SID:          conf.sid,
		Status:       conf.status,
		URI:          base + ".json",
		SubresourceURIs: map[string]string{
			"participants": base + "/Participants.json",
			"recordings":   base + "/Recordings.json",
		},
		ReasonConferenceEnded:   strp(conf.reasonEnded),
		CallSIDEndingConference: strp(conf.callSIDEnding),
	}
}

func (s *Sim) participantJSONLocked(p *participant) participantResource {
	qt := "0"
	return participantResource{
		AccountSID:             s.cfg.AccountSID,
		CallSID:                p.call.sid,
		Label:                  strp(p.label),
		CallSIDToCoach:         strp(p.coach),
		Coaching:               p.coaching,
		ConferenceSID:          p.conf.sid,
		DateCreated:            rfc2822(p.created),
		DateUpdated:            rfc2822(p.updated),
		EndConferenceOnExit:    p.endOnExit,
		Muted:                  p.muted,
		Hold:                   p.hold,
		StartConferenceOnEnter: p.startOnEnter,
		Status:                 p.status,
		QueueTime:              &qt,
		URI:                    s.accountPath() + "/Conferences/" + p.conf.sid + "/Participants/" + p.call.sid + ".json",
	}
}
