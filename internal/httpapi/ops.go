package httpapi

import (
	"net/http"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/docs"
)

type statusResponse struct {
	Status string `json:"status"`
}

// healthz says the process is alive; it checks nothing else, so that a
// slow database never gets the process restarted.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, statusResponse{Status: "ok"})
}

// readyz says whether the process can serve: store and queue reachable.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		if err := s.ready(r.Context()); err != nil {
			s.log.WarnContext(r.Context(), "httpapi: not ready", "err", err)
			writeProblemBody(w, http.StatusServiceUnavailable, problemFor(herald.CodeUnavailable, "", nil))
			return
		}
	}
	s.writeJSON(w, r, http.StatusOK, statusResponse{Status: "ok"})
}

func (s *server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(docs.OpenAPI)
}
