package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/crawlctl/crawlctl/pkg/runstate"
)

// clientTimeout bounds one request of CreateRun.
const clientTimeout = 30 * time.Second

// RefusedError is a run the API refused as bad input (400): a seed off
// the target, a bad depth. Nothing was enqueued.
type RefusedError struct{ Message string }

func (e *RefusedError) Error() string { return e.Message + " (nothing was enqueued)" }

// EncodeRunRequest is req as CreateRun sends it: JSON without HTML
// escaping, so that no seed within the limits takes more than MaxBodyBytes
// allows (json.Marshal writes < > & as six bytes each).
func EncodeRunRequest(req RunRequest) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// CreateRun posts a run to the control API at base, with token (empty:
// none) as Authorization: Bearer.
func CreateRun(ctx context.Context, base, token string, req RunRequest) (*runstate.Run, error) {
	body, err := EncodeRunRequest(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/runs", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	if token != "" {
		hreq.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: clientTimeout}).Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("calling the control API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode == http.StatusBadRequest {
			return nil, &RefusedError{e.Error.Message}
		}
		return nil, fmt.Errorf("the control API answered %s: %s", resp.Status, e.Error.Message)
	}
	var run runstate.Run
	if err := json.NewDecoder(resp.Body).Decode(&run); err != nil {
		return nil, err
	}
	return &run, nil
}
