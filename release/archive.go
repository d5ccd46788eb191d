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
// holding the binary, the README and the licence.
func pack(out, name, goos, bin string) (string, error) {
	files := []string{bin, "README.md", "LICENSE"}
	if goos == "windows" {
		path := filepath.Join(out, name+".zip")
		return path, writeZip(path, name, files)
	}
	path := filepath.Join(out, name+".tar.gz")
	return path, writeTarGz(path, name, files)
}

func writeTarGz(path, dir string, files []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: dir + "/" + filepath.Base(p), Mode: int64(st.Mode().Perm()), Size: st.Size(),
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

func writeZip(path, dir string, files []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		hdr, err := zip.FileInfoHeader(st)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Method = dir+"/"+filepath.Base(p), zip.Deflate
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
