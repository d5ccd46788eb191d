//go:build windows

package winacl

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// folderSDDL is the access list of the service's data folder: SYSTEM (the
// service) and the Administrators in full control, passed on to every file
// and folder in it (OICI), and nothing taken from the parent (P).
const folderSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// MkdirProtected makes the folder at path with folderSDDL's access list,
// there from its first moment, or gives an existing folder that list: its
// parent's entries are no longer inherited, and Windows passes the new
// ones on to what the folder holds, except items with a list of their own.
func MkdirProtected(path string) error {
	sa, err := attributes(folderSDDL)
	if err != nil {
		return err
	}
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	err = windows.CreateDirectory(p, sa)
	if errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		var dacl *windows.ACL
		if dacl, _, err = sa.SecurityDescriptor.DACL(); err == nil {
			err = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
				windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
		}
	}
	if err != nil {
		return fmt.Errorf("making %s private to SYSTEM and the Administrators: %w", path, err)
	}
	return nil
}

// privateSDDL is the access list of a private file (a key): SYSTEM, the
// Administrators and the user this process runs as, nothing inherited.
func privateSDDL() (string, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("this process's user: %w", err)
	}
	sddl := "D:P(A;;FA;;;SY)(A;;FA;;;BA)"
	if self := u.User.Sid.String(); self != "S-1-5-18" { // SYSTEM has its entry
		sddl += "(A;;FA;;;" + self + ")"
	}
	return sddl, nil
}

// CreateTemp is os.CreateTemp for a private file: the file is created with
// privateSDDL's access list, so there is no moment at which another user
// could open it. A rename in the same volume keeps that list.
func CreateTemp(dir, pattern string) (*os.File, error) {
	sddl, err := privateSDDL()
	if err != nil {
		return nil, err
	}
	sa, err := attributes(sddl)
	if err != nil {
		return nil, err
	}
	prefix, suffix, _ := strings.Cut(pattern, "*")
	for range 100 {
		var r [8]byte
		rand.Read(r[:])
		name := filepath.Join(dir, prefix+hex.EncodeToString(r[:])+suffix)
		p, err := windows.UTF16PtrFromString(name)
		if err != nil {
			return nil, err
		}
		h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, sa,
			windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
		if errors.Is(err, windows.ERROR_FILE_EXISTS) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "createtemp", Path: name, Err: err}
		}
		return os.NewFile(uintptr(h), name), nil
	}
	return nil, &os.PathError{Op: "createtemp", Path: filepath.Join(dir, pattern), Err: os.ErrExist}
}

// Describe is path's access list in SDDL, as Windows reports it.
func Describe(path string) (string, error) {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return "", fmt.Errorf("reading the access list of %s: %w", path, err)
	}
	return sd.String(), nil
}

// attributes carries sddl's security descriptor to a CreateFile or a
// CreateDirectory.
func attributes(sddl string) (*windows.SecurityAttributes, error) {
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return nil, fmt.Errorf("access list %q: %w", sddl, err)
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	return sa, nil
}
