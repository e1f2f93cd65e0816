package web

import (
	"net/http"
	"net/http/httptest"
	"testing"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// TestPprofOffByDefault: the profiles are served only when asked for.
func TestPprofOffByDefault(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := New(Options{Status: func() v1.DaemonStatus { return v1.DaemonStatus{} }, Pprof: on})
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil))
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; rec.Code != want {
			t.Errorf("Pprof %v: /debug/pprof/ answered %d, want %d", on, rec.Code, want)
		}
	}
}
