package apt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
)

// resolution is a cached Fetch result: valid while the lists it was resolved
// from are unchanged and its archives are intact.
type resolution struct {
	Lists    string  `json:"lists"` // listsID at resolution time
	Archives []entry `json:"archives"`
}

// entry is a resolved archive plus the stat of its file when its hash was
// last checked, so a warm run re-hashes only files that changed.
type entry struct {
	archive
	MTimeNS int64 `json:"mtime_ns"`
}

// requestKey names the resolution cache file of req: the same request on
// the same state gives the same key, whatever the order of names.
func requestKey(req backends.Request) string {
	data, _ := json.Marshal([2][]string{ // cannot fail: string slices
		slices.Sorted(slices.Values(req.Packages)),
		slices.Sorted(slices.Values(req.Exclude)),
	})
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:12])
}

// listsID identifies the package lists of a state by the names, sizes and
// modification times of its Release files (apt replaces them on every
// change and sets their mtime to the server's Last-Modified). It returns an
// error when there are no lists.
func listsID(lists string) (string, error) {
	ents, err := os.ReadDir(lists)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), "_InRelease") && !strings.HasSuffix(e.Name(), "_Release") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s %d %d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("no package lists in %s: %w", lists, fs.ErrNotExist)
	}
	return b.String(), nil
}

func readResolution(path string) (*resolution, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r resolution
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

func writeResolution(path string, r *resolution) error {
	data, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(data, '\n'))
}

// errBadArchive reports a cached archive whose size or hash is wrong.
var errBadArchive = errors.New("size or SHA256 differs from the package index")

// verify checks the archive file at path against a. A file whose size and
// mtime equal those recorded at its last check (mtimeNS) is trusted without
// hashing. It returns the file's mtime, fs.ErrNotExist for a missing file,
// or errBadArchive.
func verify(path string, a archive, mtimeNS int64) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if fi.Size() != a.Size {
		return 0, errBadArchive
	}
	mt := fi.ModTime().UnixNano()
	if mtimeNS != 0 && mt == mtimeNS {
		return mt, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sum, err := hashReader(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if sum != a.SHA256 {
		return 0, errBadArchive
	}
	return mt, nil
}

func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyVerified copies src to dst (through a temporary file and rename) if
// it has a's size and hash.
func copyVerified(src, dst string, a archive) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return err
	}
	defer out.Cleanup()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if n != a.Size || hex.EncodeToString(h.Sum(nil)) != a.SHA256 {
		return errBadArchive
	}
	return out.Commit()
}
