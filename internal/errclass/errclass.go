// Package errclass classifies domain errors: not found, invalid input,
// conflict, out of scope. Domain packages return *Error values (usually as
// package sentinels); the HTTP layer maps the Kind to a status with
// errors.As, without knowing each package's sentinels.
package errclass

import (
	"errors"
	"fmt"
)

// Kind is the class of a domain error.
type Kind int

// The kinds of domain error. Each maps to one HTTP status at the edge.
const (
	Internal        Kind = iota // a fault of ours (500)
	Invalid                     // the input breaks a rule (422)
	NotFound                    // no such thing (404)
	Conflict                    // the thing exists or its state forbids the step (409)
	OutOfScope                  // it belongs outside the caller's organisation subtree (403)
	Forbidden                   // the caller's role may not do this (403)
	Unauthenticated             // no valid identity (401)
	Throttled                   // too many attempts; wait (429)
	Unavailable                 // a component needed is down (503)
)

// Error is a classified domain error. Code is a stable snake_case word that
// API clients may switch on; Field names the offending input field, if any.
type Error struct {
	Kind    Kind
	Code    string
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Is lets errors.Is match two *Error values by kind and code, so a sentinel
// matches a copy that carries a field name.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Code == e.Code
}

// New returns an error of the given kind and code.
func New(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Invalidf returns an Invalid error naming the field and the rule it broke.
func Invalidf(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Code: "invalid_field", Field: field, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err, Internal when it carries none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
