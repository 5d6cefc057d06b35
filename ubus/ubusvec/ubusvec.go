// Package ubusvec loads the recorded ubus transcripts that the ubus and
// netifd tests replay: one JSON file per socket connection, a list of
// messages with their direction, and an index with the command that ran on
// each connection and what it printed. Only tests import it.
package ubusvec

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Frame is one recorded message.
type Frame struct {
	// C2S is true for bytes the program sent to ubusd, false for what
	// ubusd sent to it.
	C2S   bool
	Bytes []byte
	Note  string
	T     float64 // seconds on the scenario's clock
	FDs   int     // file descriptors that travelled with the message
}

// File is one recorded connection and what the index says about it.
type File struct {
	Name     string // e.g. "call-count.cli.json"
	Scenario string
	Role     string
	Command  string
	ExitCode *int
	Stdout   string
	Stderr   string
	// FromLibubus is false when the program's own bytes were written by
	// the recording script rather than by libubus.
	FromLibubus bool
	// Excerpt, for a daemon's connection cut to one scenario, is the
	// range of frames of the whole connection it holds (from 1).
	ExcerptFirst, ExcerptLast int
	// Truncated counts the frames left out at the end of a cut-short file.
	Truncated   int
	StoppedWith string
	Frames      []Frame
}

// Scenario is a group of connections recorded together.
type Scenario struct {
	Name        string
	Description string
	Files       []*File
}

type indexFile struct {
	Scenario    string `json:"scenario"`
	Description string `json:"description"`
	Files       []struct {
		File        string `json:"file"`
		Role        string `json:"role"`
		Command     string `json:"command"`
		ExitCode    *int   `json:"exit_code"`
		Stdout      string `json:"stdout"`
		Stderr      string `json:"stderr"`
		From        string `json:"c2s_bytes_from"`
		Excerpt     string `json:"excerpt"`
		Truncated   int    `json:"truncated_frames_dropped"`
		StoppedWith string `json:"stopped_with"`
		Frames      int    `json:"frames"`
	} `json:"files"`
}

type frameFile struct {
	Dir  string  `json:"dir"`
	Hex  string  `json:"hex"`
	Note string  `json:"note"`
	T    float64 `json:"t"`
	FDs  int     `json:"fds"`
}

// Load reads dir/index.json and every transcript it lists.
func Load(dir string) ([]*Scenario, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	var idx []indexFile
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("%s/index.json: %w", dir, err)
	}
	var out []*Scenario
	for _, s := range idx {
		sc := &Scenario{Name: s.Scenario, Description: s.Description}
		for _, f := range s.Files {
			frames, err := LoadFrames(filepath.Join(dir, f.File))
			if err != nil {
				return nil, err
			}
			if len(frames) != f.Frames {
				return nil, fmt.Errorf("%s: %d frames, the index says %d", f.File, len(frames), f.Frames)
			}
			file := &File{
				Name: f.File, Scenario: s.Scenario, Role: f.Role, Command: f.Command,
				ExitCode: f.ExitCode, Stdout: f.Stdout, Stderr: f.Stderr,
				FromLibubus: strings.Contains(f.From, "libubus"),
				Truncated:   f.Truncated, StoppedWith: f.StoppedWith, Frames: frames,
			}
			if f.Excerpt != "" {
				var a, b int
				if _, err := fmt.Sscanf(f.Excerpt, "frames %d..%d", &a, &b); err != nil {
					return nil, fmt.Errorf("%s: excerpt %q: %w", f.File, f.Excerpt, err)
				}
				file.ExcerptFirst, file.ExcerptLast = a, b
			}
			sc.Files = append(sc.Files, file)
		}
		out = append(out, sc)
	}
	return out, nil
}

// LoadFrames reads one transcript.
func LoadFrames(path string) ([]Frame, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ff []frameFile
	if err := json.Unmarshal(raw, &ff); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	frames := make([]Frame, len(ff))
	for i, f := range ff {
		b, err := hex.DecodeString(f.Hex)
		if err != nil {
			return nil, fmt.Errorf("%s frame %d: %w", path, i+1, err)
		}
		switch f.Dir {
		case "c2s", "s2c":
		default:
			return nil, fmt.Errorf("%s frame %d: direction %q", path, i+1, f.Dir)
		}
		frames[i] = Frame{C2S: f.Dir == "c2s", Bytes: b, Note: f.Note, T: f.T, FDs: f.FDs}
	}
	return frames, nil
}

// Files returns every file of the scenarios, sorted by name.
func Files(scs []*Scenario) []*File {
	var out []*File
	for _, s := range scs {
		out = append(out, s.Files...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Find returns the file called name.
func Find(scs []*Scenario, name string) *File {
	for _, s := range scs {
		for _, f := range s.Files {
			if f.Name == name {
				return f
			}
		}
	}
	return nil
}

// Args splits a recorded command line into words the way the recording's
// shell did: single-quoted words are taken literally. Words without quotes
// are split at spaces. The index writes the JSON argument of the ubus tool
// unquoted when it has no spaces, so a word is also ended only by a space
// outside braces.
func Args(cmd string) []string {
	var out []string
	var cur strings.Builder
	inQuote, depth, have := false, 0, false
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case inQuote:
			if c == '\'' {
				inQuote = false
			} else {
				cur.WriteByte(c)
			}
		case c == '\'':
			inQuote, have = true, true
		case c == ' ' && depth == 0:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			switch c {
			case '{', '[':
				depth++
			case '}', ']':
				if depth > 0 {
					depth--
				}
			}
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// Hex shows bytes for a failure message.
func Hex(b []byte) string { return hex.EncodeToString(b) }

// CLI is a recorded command line of the ubus tool, split up.
type CLI struct {
	Verb    string   // call, list, listen, send, subscribe, wait_for, monitor
	Args    []string // what follows the verb
	Timeout int      // -t, seconds; 0 when not given
	Verbose bool     // -v
}

// ParseCLI reads a recorded ubus command line; ok is false for other
// programs.
func ParseCLI(cmd string) (c CLI, ok bool) {
	w := Args(cmd)
	if len(w) == 0 || w[0] != "ubus" {
		return c, false
	}
	i := 1
	for ; i < len(w) && strings.HasPrefix(w[i], "-"); i++ {
		switch w[i] {
		case "-s":
			i++
		case "-t":
			i++
			if i < len(w) {
				fmt.Sscanf(w[i], "%d", &c.Timeout)
			}
		case "-v":
			c.Verbose = true
		}
	}
	if i >= len(w) {
		return c, false
	}
	c.Verb, c.Args = w[i], w[i+1:]
	return c, true
}
