package httpapi

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lookout_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe logs and counts every request. It logs the route template, never
// the raw path or query, which may carry tokens (hearing links do).
func (a *API) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	took := time.Since(start)
	status := c.Writer.Status()
	a.metrics.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(status)).Inc()
	a.metrics.duration.WithLabelValues(route, c.Request.Method).Observe(took.Seconds())
	if route == "/metrics" || route == "/healthz" {
		return // scraped every few seconds; the counters say enough
	}
	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("method", c.Request.Method), slog.String("route", route), slog.Int("status", status),
		slog.Duration("took", took), slog.String("client", c.ClientIP()),
	}
	if p, ok := principalOf(c); ok {
		attrs = append(attrs, slog.String("user", p.UserID))
	}
	a.p.Log.LogAttrs(c.Request.Context(), level, "http request", attrs...)
}

// recoverer turns a panic in a handler into a logged 500 with the JSON error
// shape, keeping the server up.
func (a *API) recoverer(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			a.p.Log.ErrorContext(c.Request.Context(), "handler panic", "route", c.FullPath(), "panic", r)
			writeError(c, http.StatusInternalServerError, "internal", "", "internal error")
		}
	}()
	c.Next()
}
