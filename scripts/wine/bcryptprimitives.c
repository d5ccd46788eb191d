/* A stand-in for Windows 10's bcryptprimitives.dll, for running the Windows
 * build under Debian 12's Wine 8, which lacks it: Go's Windows runtime loads
 * ProcessPrng from it at start. It fills the buffer from RtlGenRandom
 * (advapi32's SystemFunction036), which Wine has. Test hosts only: real
 * Windows has the DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
