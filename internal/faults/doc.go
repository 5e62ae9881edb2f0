// Package faults runs the real warmtransfer binary as separate processes
// against one Twilio simulator and shows the contact center surviving what
// production throws at it: several instances on one PostgreSQL database,
// an instance killed mid-call and restarted, PostgreSQL restarting.
package faults
