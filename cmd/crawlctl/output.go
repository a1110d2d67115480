package main

import (
	"encoding/json"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"
)

// printObject writes v in the configured format; table renders the table.
func (a *app) printObject(v any, table func(io.Writer) error) error {
	switch a.cfg.Output {
	case "json":
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding YAML: %w", err)
		}
		_, err = a.out.Write(b)
		return err
	default:
		return table(a.out)
	}
}
