package metricstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// Register adds the Prometheus HTTP query API to mux.
func (s *Store) Register(mux *http.ServeMux) {
	mux.HandleFunc("/api/v1/query", s.query)
	mux.HandleFunc("/api/v1/query_range", s.queryRange)
	mux.HandleFunc("/api/v1/series", s.series)
}

type apiResponse struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
}

func respond(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(apiResponse{Status: "success", Data: data})
}

func fail(w http.ResponseWriter, code int, typ string, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(apiResponse{Status: "error", ErrorType: typ, Error: err.Error()})
}

// parseTime reads a Prometheus API time: unix seconds or RFC 3339.
func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q as a time", s)
}

// parseStep reads a step: a duration (15s) or seconds.
func parseStep(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
		return time.Duration(f * float64(time.Second)), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("cannot parse %q as a step", s)
}

func (s *Store) query(w http.ResponseWriter, r *http.Request) {
	ts, err := parseTime(r.FormValue("time"), time.Now())
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	q, err := s.engine.NewInstantQuery(r.Context(), s.db, nil, r.FormValue("query"), ts)
	s.exec(w, r.Context(), q, err)
}

func (s *Store) queryRange(w http.ResponseWriter, r *http.Request) {
	start, err1 := parseTime(r.FormValue("start"), time.Time{})
	end, err2 := parseTime(r.FormValue("end"), time.Time{})
	step, err3 := parseStep(r.FormValue("step"))
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			fail(w, http.StatusBadRequest, "bad_data", err)
			return
		}
	}
	if end.Before(start) || end.Sub(start)/step > 11000 {
		fail(w, http.StatusBadRequest, "bad_data", fmt.Errorf("end before start, or more than 11,000 points: raise the step"))
		return
	}
	q, err := s.engine.NewRangeQuery(r.Context(), s.db, nil, r.FormValue("query"), start, end, step)
	s.exec(w, r.Context(), q, err)
}

func (s *Store) exec(w http.ResponseWriter, ctx context.Context, q promql.Query, err error) {
	if err != nil {
		fail(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		fail(w, http.StatusUnprocessableEntity, "execution", res.Err)
		return
	}
	respond(w, map[string]any{"resultType": res.Value.Type(), "result": encodeValue(res.Value)})
}

type point [2]any // [unix seconds, "value"]

func pt(t int64, v float64) point {
	return point{float64(t) / 1000, strconv.FormatFloat(v, 'f', -1, 64)}
}

func encodeValue(v parser.Value) any {
	switch val := v.(type) {
	case promql.Matrix:
		out := make([]map[string]any, 0, len(val))
		for _, s := range val {
			pts := make([]point, 0, len(s.Floats))
			for _, f := range s.Floats {
				pts = append(pts, pt(f.T, f.F))
			}
			out = append(out, map[string]any{"metric": s.Metric.Map(), "values": pts})
		}
		return out
	case promql.Vector:
		out := make([]map[string]any, 0, len(val))
		for _, s := range val {
			out = append(out, map[string]any{"metric": s.Metric.Map(), "value": pt(s.T, s.F)})
		}
		return out
	case promql.Scalar:
		return pt(val.T, val.V)
	case promql.String:
		return point{float64(val.T) / 1000, val.V}
	}
	return nil
}

func (s *Store) series(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		fail(w, http.StatusBadRequest, "bad_data", err)
		return
	}
	start, _ := parseTime(r.Form.Get("start"), time.Unix(0, 0))
	end, _ := parseTime(r.Form.Get("end"), time.Now())
	matches := r.Form["match[]"]
	if len(matches) == 0 {
		fail(w, http.StatusBadRequest, "bad_data", fmt.Errorf("no match[] parameter"))
		return
	}
	q, err := s.db.Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		fail(w, http.StatusInternalServerError, "internal", err)
		return
	}
	defer q.Close()
	var out []map[string]string
	seen := map[string]bool{}
	for _, m := range matches {
		sel, err := parser.NewParser(parser.Options{}).ParseMetricSelector(m)
		if err != nil {
			fail(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		set := q.Select(r.Context(), false, &storage.SelectHints{Start: start.UnixMilli(), End: end.UnixMilli(), Func: "series"}, sel...)
		for set.Next() {
			ls := set.At().Labels()
			if k := ls.String(); !seen[k] {
				seen[k] = true
				out = append(out, ls.Map())
			}
		}
		if err := set.Err(); err != nil {
			fail(w, http.StatusInternalServerError, "internal", err)
			return
		}
	}
	if out == nil {
		out = []map[string]string{}
	}
	respond(w, out)
}
