using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VmmSharp.Tests.Cli.Terminal;

/// <summary>A pseudo-terminal pair, so tests can be a user typing at a real terminal.</summary>
internal sealed unsafe partial class Pty : IDisposable
{
    private const int O_RDWR = 0x2, O_NOCTTY = 0x100;

    private Pty(SafeFileHandle master, SafeFileHandle terminal, string path)
    {
        Master = master;
        Terminal = terminal;
        Path = path;
    }

    /// <summary>The terminal's device path, /dev/pts/N.</summary>
    public string Path { get; }

    /// <summary>The side the user types into.</summary>
    public SafeFileHandle Master { get; }

    /// <summary>The terminal a program reads (what its stdin would be).</summary>
    public SafeFileHandle Terminal { get; }

    public static Pty Open()
    {
        var master = new SafeFileHandle(PosixOpenPt(O_RDWR | O_NOCTTY), ownsHandle: true);
        if (master.IsInvalid || GrantPt(master) != 0 || UnlockPt(master) != 0)
        {
            throw new InvalidOperationException($"no pseudo-terminal: errno {Marshal.GetLastPInvokeError()}");
        }
        byte* name = stackalloc byte[128];
        if (PtsNameR(master, name, 128) != 0)
        {
            throw new InvalidOperationException($"ptsname_r failed: errno {Marshal.GetLastPInvokeError()}");
        }
        string path = Marshal.PtrToStringUTF8((nint)name)!;
        SafeFileHandle terminal = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        return new Pty(master, terminal, path);
    }

    /// <summary>Types <paramref name="bytes"/> on the terminal.</summary>
    public void Type(params byte[] bytes)
    {
        fixed (byte* p = bytes)
        {
            Assert.Equal(bytes.Length, (int)Write(Master, p, (nuint)bytes.Length));
        }
    }

    /// <summary>The terminal's local flags (ICANON, ECHO, ISIG, ...).</summary>
    public uint LocalFlags()
    {
        byte* termios = stackalloc byte[60];
        Assert.Equal(0, TcGetAttr(Terminal, termios));
        return *(uint*)(termios + 12);
    }

    public void Dispose()
    {
        Terminal.Dispose();
        Master.Dispose();
    }

    [LibraryImport("libc.so.6", EntryPoint = "posix_openpt", SetLastError = true)]
    private static partial int PosixOpenPt(int flags);

    [LibraryImport("libc.so.6", EntryPoint = "grantpt", SetLastError = true)]
    private static partial int GrantPt(SafeFileHandle fd);

    [LibraryImport("libc.so.6", EntryPoint = "unlockpt", SetLastError = true)]
    private static partial int UnlockPt(SafeFileHandle fd);

    [LibraryImport("libc.so.6", EntryPoint = "ptsname_r", SetLastError = true)]
    private static partial int PtsNameR(SafeFileHandle fd, byte* buffer, nuint length);

    [LibraryImport("libc.so.6", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(SafeFileHandle fd, byte* buffer, nuint count);

    [LibraryImport("libc.so.6", EntryPoint = "tcgetattr", SetLastError = true)]
    private static partial int TcGetAttr(SafeFileHandle fd, byte* termios);
}
