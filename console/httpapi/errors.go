package httpapi

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/internal/errclass"
)

// errorBody is the one error shape of the API (DESIGN.md):
// {"error": {"code": "...", "message": "...", "field": "..."}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeError(c *gin.Context, status int, code, field, message string) {
	c.AbortWithStatusJSON(status, errorBody{Error: errorDetail{Code: code, Message: message, Field: field}})
}

var kindStatus = map[errclass.Kind]int{
	errclass.Invalid:         http.StatusUnprocessableEntity,
	errclass.NotFound:        http.StatusNotFound,
	errclass.Conflict:        http.StatusConflict,
	errclass.OutOfScope:      http.StatusForbidden,
	errclass.Forbidden:       http.StatusForbidden,
	errclass.Unauthenticated: http.StatusUnauthorized,
	errclass.Throttled:       http.StatusTooManyRequests,
	errclass.Unavailable:     http.StatusServiceUnavailable,
}

// fail answers with the status that err's class maps to. Unclassified errors
// are ours: they are logged in full and answered with a generic 500, so no
// internal detail reaches the client.
func (a *API) fail(c *gin.Context, err error) {
	var e *errclass.Error
	if errors.As(err, &e) {
		if status, ok := kindStatus[e.Kind]; ok {
			writeError(c, status, e.Code, e.Field, e.Message)
			return
		}
	}
	a.p.Log.ErrorContext(c.Request.Context(), "request failed", "route", c.FullPath(), "err", err)
	writeError(c, http.StatusInternalServerError, "internal", "", "internal error")
}
