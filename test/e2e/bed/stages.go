package bed

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// stagesFS holds kwok's Stage objects: node/fast (a new node turns Ready),
// node/heartbeat-with-lease (status refresh; the Lease is renewed by kwok
// itself) and pod/fast (pods turn Running and Ready at once, deleted pods go).
//
//go:embed stages/*.yaml
var stagesFS embed.FS

// writeStages writes all stages into one multi-document file under dir for
// kwok's --config and returns its path.
func writeStages(dir string) (string, error) {
	files, err := fs.Glob(stagesFS, "stages/*.yaml")
	if err != nil {
		return "", err
	}
	var docs []string
	for _, f := range files {
		raw, err := stagesFS.ReadFile(f)
		if err != nil {
			return "", err
		}
		docs = append(docs, strings.TrimSpace(string(raw)))
	}
	path := filepath.Join(dir, "kwok-stages.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write kwok stages: %w", err)
	}
	return path, nil
}
