package live

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

// CopyVerified copies the file or device src to dst, hashing what it
// reads, then re-reads dst and compares hashes, so a bad read of the
// medium or a short write shows up now, not as I/O errors in the running
// system. It returns the bytes copied. dst is removed on failure.
func CopyVerified(ctx context.Context, dst, src string) (n int64, err error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			os.Remove(dst)
		}
	}()
	srcSum := sha256.New()
	n, err = io.Copy(out, io.TeeReader(ctxReader{ctx, in}, srcSum))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	dstSum, m, err := hashFile(ctx, dst)
	if err != nil {
		return n, fmt.Errorf("verify %s: %w", dst, err)
	}
	if m != n || !bytes.Equal(dstSum, srcSum.Sum(nil)) {
		return n, fmt.Errorf("verify %s: copy of %s differs (%d bytes, sha256 %x; read %d bytes, sha256 %x)", dst, src, m, dstSum, n, srcSum.Sum(nil))
	}
	return n, nil
}

func hashFile(ctx context.Context, p string) ([]byte, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	return h.Sum(nil), n, err
}

// ctxReader stops a long copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
