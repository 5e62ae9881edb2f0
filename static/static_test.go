package static

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"
)

// vendorRow matches a row of the file table in vendor/README.md:
// | `file` | `package@version` | `source` | `sha256` |
var vendorRow = regexp.MustCompile("^\\|\\s*`([^`]+\\.js)`\\s*\\|\\s*`([^`]+)`\\s*\\|\\s*`[^`]+`\\s*\\|\\s*`([0-9a-f]{64})`\\s*\\|\\s*$")

type vendoredFile struct {
	name   string
	pkg    string // npm package@version
	sha256 string
}

// readVendorTable parses the README's table of vendored files, keyed by file name.
func readVendorTable(t *testing.T) map[string]vendoredFile {
	t.Helper()
	readme, err := fs.ReadFile(FS, "vendor/README.md")
	if err != nil {
		t.Fatalf("read vendor/README.md: %v", err)
	}
	table := map[string]vendoredFile{}
	for line := range strings.Lines(string(readme)) {
		m := vendorRow.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		if _, dup := table[m[1]]; dup {
			t.Errorf("vendor/README.md lists %s twice", m[1])
		}
		table[m[1]] = vendoredFile{name: m[1], pkg: m[2], sha256: m[3]}
	}
	if len(table) == 0 {
		t.Fatal("vendor/README.md: no rows found in the file table")
	}
	return table
}

func TestVendoredFilesMatchREADME(t *testing.T) {
	table := readVendorTable(t)

	tests := []struct {
		name    string
		file    string
		pkg     string
		markers []string // strings the file must contain, e.g. its version
	}{
		{
			name:    "htmx",
			file:    "htmx-2.0.11.min.js",
			pkg:     "htmx.org@2.0.11",
			markers: []string{`version:"2.0.11"`},
		},
		{
			name:    "htmx sse extension",
			file:    "htmx-ext-sse-2.2.4.min.js",
			pkg:     "htmx-ext-sse@2.2.4",
			markers: []string{`htmx.defineExtension("sse"`},
		},
		{
			name:    "twilio voice sdk",
			file:    "twilio-voice-2.18.5.min.js",
			pkg:     "@twilio/voice-sdk@2.18.5",
			markers: []string{`RELEASE_VERSION="2.18.5"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row, ok := table[tt.file]
			if !ok {
				t.Fatalf("vendor/README.md has no row for %s", tt.file)
			}
			if row.pkg != tt.pkg {
				t.Errorf("vendor/README.md: %s comes from %s, want %s", tt.file, row.pkg, tt.pkg)
			}
			data, err := fs.ReadFile(FS, path.Join("vendor", tt.file))
			if err != nil {
				t.Fatalf("read vendored file: %v", err)
			}
			if len(data) == 0 {
				t.Fatalf("vendor/%s is empty", tt.file)
			}
			sum := sha256.Sum256(data)
			if got := hex.EncodeToString(sum[:]); got != row.sha256 {
				t.Errorf("vendor/%s sha256 = %s, README says %s; refresh the file or the table (see vendor/README.md)", tt.file, got, row.sha256)
			}
			for _, marker := range tt.markers {
				if !bytes.Contains(data, []byte(marker)) {
					t.Errorf("vendor/%s does not contain %q", tt.file, marker)
				}
			}
		})
	}

	// Every listed file is covered above, and every vendored script is listed.
	checked := map[string]bool{}
	for _, tt := range tests {
		checked[tt.file] = true
	}
	for name := range table {
		if !checked[name] {
			t.Errorf("vendor/README.md lists %s, which this test does not check", name)
		}
	}
	scripts, err := fs.Glob(FS, "vendor/*.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts {
		if _, ok := table[path.Base(s)]; !ok {
			t.Errorf("%s is not listed in vendor/README.md", s)
		}
	}
}

func TestEmbeddedFilesPresent(t *testing.T) {
	tests := []struct {
		name string
		file string
	}{
		{name: "stylesheet", file: "css/app.css"},
		{name: "app script", file: "js/app.js"},
		{name: "htmx license", file: "vendor/LICENSES/htmx.org.txt"},
		{name: "htmx sse license", file: "vendor/LICENSES/htmx-ext-sse.txt"},
		{name: "twilio voice sdk license", file: "vendor/LICENSES/twilio-voice-sdk.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := fs.ReadFile(FS, tt.file)
			if err != nil {
				t.Fatalf("read %s: %v", tt.file, err)
			}
			if len(bytes.TrimSpace(data)) == 0 {
				t.Errorf("%s is empty", tt.file)
			}
		})
	}
}

func TestStylesheetHasBadges(t *testing.T) {
	css, err := fs.ReadFile(FS, "css/app.css")
	if err != nil {
		t.Fatal(err)
	}
	// The templates render one badge class per call state and agent presence.
	for _, class := range []string{
		"badge-waiting", "badge-ringing", "badge-with-agent", "badge-transferring", "badge-ended",
		"badge-available", "badge-busy", "badge-away", "badge-offline",
		"btn-primary", "btn-danger", "btn-secondary",
	} {
		if !bytes.Contains(css, []byte("."+class)) {
			t.Errorf("css/app.css has no .%s rule", class)
		}
	}
}
