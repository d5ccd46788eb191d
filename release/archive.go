package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"time"
)

// pack writes name.tar.gz (name.zip for Windows) into out: a folder name/
// holding the binary, the README with the docs/ pages it links to,
// SECURITY.md and the licence.
func pack(out, name, goos, bin string) (string, error) {
	files := []entry{{bin, filepath.Base(bin)}}
	docs, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		return "", err
	}
	for _, p := range append([]string{"README.md", "SECURITY.md", "LICENSE"}, docs...) {
		files = append(files, entry{p, filepath.ToSlash(p)}) // where it is in the repository, for the README's links
	}
	if goos == "windows" {
		path := filepath.Join(out, name+".zip")
		return path, writeZip(path, name, files)
	}
	path := filepath.Join(out, name+".tar.gz")
	return path, writeTarGz(path, name, files)
}

func writeTarGz(path, dir string, files []entry) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, e := range files {
		p := e.src
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: dir + "/" + e.name, Mode: int64(st.Mode().Perm()), Size: st.Size(),
			ModTime: st.ModTime().Truncate(time.Second), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if err := copyFile(tw, p); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}

func writeZip(path, dir string, files []entry) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, e := range files {
		p := e.src
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		hdr, err := zip.FileInfoHeader(st)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Method = dir+"/"+e.name, zip.Deflate
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if err := copyFile(w, p); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// entry is a file to pack: its path here and its name in the archive's
// folder.
type entry struct{ src, name string }
