using System.Runtime.InteropServices;

namespace VmmSharp.Host;

/// <summary>The libc terminal calls <see cref="TerminalInput"/> needs (Linux x86-64 glibc layout); the plain file calls are in <c>Interop.Libc</c>.</summary>
internal static unsafe partial class TerminalNative
{
    private const string Lib = "libc.so.6";

    public const int TCSANOW = 0;

    public const uint IGNBRK = 0x1, BRKINT = 0x2, PARMRK = 0x8, ISTRIP = 0x20, INLCR = 0x40, IGNCR = 0x80, ICRNL = 0x100, IXON = 0x400;
    public const uint OPOST = 0x1;
    public const uint CSIZE = 0x30, CS8 = 0x30, PARENB = 0x100;
    public const uint ISIG = 0x1, ICANON = 0x2, ECHO = 0x8, ECHONL = 0x40, IEXTEN = 0x8000;
    public const int VTIME = 5, VMIN = 6;

    [LibraryImport(Lib, EntryPoint = "isatty")]
    public static partial int IsATty(int fd);

    [LibraryImport(Lib, EntryPoint = "tcgetattr", SetLastError = true)]
    public static partial int TcGetAttr(int fd, Termios* termios);

    [LibraryImport(Lib, EntryPoint = "tcsetattr", SetLastError = true)]
    public static partial int TcSetAttr(int fd, int optionalActions, Termios* termios);

    /// <summary>glibc's <c>struct termios</c> (60 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Termios
    {
        public uint InputFlags;
        public uint OutputFlags;
        public uint ControlFlags;
        public uint LocalFlags;
        public byte Line;
        public fixed byte ControlChars[32];
        public uint InputSpeed;
        public uint OutputSpeed;
    }
}
