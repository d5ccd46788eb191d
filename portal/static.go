package portal

import (
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strings"
)

func init() {
	// Types a scratch image has no /etc/mime.types for; Go knows the
	// common web ones (html, js, mjs, css, json, wasm, svg, png...) itself.
	for ext, typ := range map[string]string{
		".ico": "image/x-icon", ".map": "application/json", ".txt": "text/plain; charset=utf-8",
		".woff2": "font/woff2", ".woff": "font/woff", ".glb": "model/gltf-binary", ".gltf": "model/gltf+json",
		".webmanifest": "application/manifest+json",
	} {
		mime.AddExtensionType(ext, typ)
	}
}

// staticHandler serves dir under prefix. os.Root keeps every lookup inside
// dir, symlinks included; directories serve their index.html and are never
// listed; HTML is revalidated on every load (a new build shows at once),
// other files are cached for an hour.
func staticHandler(dir, prefix string) (http.Handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(noListing{root.FS()})
	return http.StripPrefix(strings.TrimSuffix(prefix, "/"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasSuffix(p, "/") || path.Ext(p) == ".html" {
			w.Header().Set("Cache-Control", "no-cache")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=3600")
		}
		files.ServeHTTP(w, r)
	})), nil
}

// noListing hides directories that have no index.html, so a folder's
// contents are never listed.
type noListing struct{ fs.FS }

func (n noListing) Open(name string) (fs.File, error) {
	f, err := n.FS.Open(name)
	if err != nil {
		// Includes os.Root refusing a symlink that leads out of the
		// folder: to the client, that file does not exist.
		return nil, fs.ErrNotExist
	}
	st, err := f.Stat()
	if err != nil || !st.IsDir() {
		return f, err
	}
	idx, err := n.FS.Open(path.Join(name, "index.html"))
	if err != nil {
		f.Close()
		return nil, fs.ErrNotExist
	}
	idx.Close()
	return f, nil
}
