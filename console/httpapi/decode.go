package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"
)

// limitBody caps every request body at MaxBodyBytes, or an upload route's
// at its own larger cap (bodyCaps).
func (a *API) limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		limit := max(a.p.MaxBodyBytes, bodyCaps[c.Request.Method+" "+c.FullPath()])
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	}
	c.Next()
}

// decode reads exactly one JSON object into dst, refusing unknown fields,
// wrong types, trailing data and bodies over the cap. On failure it has
// already answered and returns false.
func (a *API) decode(c *gin.Context, dst any) bool {
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "application/json" {
		writeError(c, http.StatusUnsupportedMediaType, "unsupported_media_type", "", "the body must be application/json")
		return false
	}
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		maxErr    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &maxErr):
		writeError(c, http.StatusRequestEntityTooLarge, "body_too_large", "", fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit))
	case errors.Is(err, io.EOF):
		writeError(c, http.StatusBadRequest, "invalid_json", "", "the body is empty")
	case errors.As(err, &syntaxErr):
		writeError(c, http.StatusBadRequest, "invalid_json", "", fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset))
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			writeError(c, http.StatusBadRequest, "invalid_json", "", "the body must be a JSON object")
			return false
		}
		want := jsonKind(typeErr.Type.Kind().String())
		if shaped, ok := reflect.New(typeErr.Type).Interface().(interface{ JSONShape() string }); ok {
			want = shaped.JSONShape()
		}
		writeError(c, http.StatusBadRequest, "invalid_type", field, fmt.Sprintf("%s must be %s", field, want))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		writeError(c, http.StatusBadRequest, "unknown_field", field, fmt.Sprintf("unknown field %q", field))
	default:
		writeError(c, http.StatusBadRequest, "invalid_json", "", err.Error())
	}
	return false
}

// jsonKind names a Go kind as a JSON type, for error messages.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	default:
		return "a number"
	}
}
