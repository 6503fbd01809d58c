using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// Runs a program with <c>posix_spawnp</c>, watches its standard output for a marker and reaps it with
/// <c>wait4</c>, which reports its peak resident set size. (System.Diagnostics.Process reaps children
/// itself and cannot tell the peak RSS.)
/// </summary>
internal static unsafe partial class ChildProcess
{
    /// <summary>What one run showed.</summary>
    /// <param name="MarkerAfter">Time from spawning to the marker on stdout, or null if it never came.</param>
    /// <param name="ExitedAfter">Time from spawning until <c>wait4</c> reaped it: what a parent waiting for the command sees.</param>
    /// <param name="PeakRssKiB">The child's peak resident set size.</param>
    /// <param name="ExitStatus">Its exit status, or 128 + signal.</param>
    /// <param name="Output">What it printed.</param>
    public sealed record Result(TimeSpan? MarkerAfter, TimeSpan ExitedAfter, long PeakRssKiB, int ExitStatus, string Output)
    {
        /// <summary>The CPU time (user + system) the child used over its whole life, from <c>wait4</c>'s usage.</summary>
        public TimeSpan CpuTime { get; init; }
    }

    /// <summary>Runs <paramref name="argv"/> until it exits, killing it after <paramref name="deadline"/>.</summary>
    public static Result Run(string[] argv, string marker, TimeSpan deadline) => Run(argv, marker, deadline, null, false);

    /// <summary>
    /// Runs <paramref name="argv"/> until it exits, killing it after <paramref name="deadline"/>; calls
    /// <paramref name="onLine"/> with each complete line of its output and the <see cref="Stopwatch"/> timestamp
    /// of the read that completed it, on this thread; with <paramref name="withStderr"/> its stderr joins stdout.
    /// </summary>
    public static Result Run(string[] argv, string marker, TimeSpan deadline, Action<string, long>? onLine, bool withStderr)
    {
        int* fds = stackalloc int[2];
        if (Pipe2(fds, OCloexec) != 0)
        {
            throw new VmmException($"pipe2 failed: errno {Marshal.GetLastPInvokeError()}");
        }
        byte* actions = stackalloc byte[256]; // posix_spawn_file_actions_t is 80 bytes on glibc
        _ = FileActionsInit(actions);
        _ = FileActionsAddOpen(actions, 0, "/dev/null", 0, 0);
        _ = FileActionsAddDup2(actions, fds[1], 1);
        if (withStderr)
        {
            _ = FileActionsAddDup2(actions, fds[1], 2);
        }
        else
        {
            _ = FileActionsAddOpen(actions, 2, "/dev/null", 1, 0);
        }

        nint[] native = new nint[argv.Length + 1];
        string[] environment = [.. Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Select(k => $"{k}={Environment.GetEnvironmentVariable(k)}")];
        nint[] envp = new nint[environment.Length + 1];
        int pid;
        long start;
        try
        {
            for (int i = 0; i < argv.Length; i++)
            {
                native[i] = Marshal.StringToCoTaskMemUTF8(argv[i]);
            }
            for (int i = 0; i < environment.Length; i++)
            {
                envp[i] = Marshal.StringToCoTaskMemUTF8(environment[i]);
            }
            fixed (nint* a = native, e = envp)
            {
                start = Stopwatch.GetTimestamp();
                int rc = PosixSpawnp(&pid, argv[0], actions, null, a, e);
                if (rc != 0)
                {
                    throw new VmmException($"cannot start '{argv[0]}': errno {rc}");
                }
            }
        }
        finally
        {
            foreach (nint p in native.Concat(envp))
            {
                Marshal.FreeCoTaskMem(p);
            }
            _ = FileActionsDestroy(actions);
            _ = Close(fds[1]);
        }

        var output = new StringBuilder();
        int lineStart = 0;
        TimeSpan? markerAfter = null;
        byte[] buffer = new byte[4096];
        var poll = new PollFd { Fd = fds[0], Events = PollIn };
        while (true)
        {
            TimeSpan left = deadline - Stopwatch.GetElapsedTime(start);
            if (left <= TimeSpan.Zero)
            {
                _ = Kill(pid, 9);
                break;
            }
            if (Poll(&poll, 1, (int)Math.Ceiling(left.TotalMilliseconds)) <= 0)
            {
                continue;
            }
            int n;
            fixed (byte* b = buffer)
            {
                n = (int)Read(fds[0], b, (nuint)buffer.Length);
            }
            if (n <= 0)
            {
                break; // end of file: the child closed its stdout
            }
            long readAt = Stopwatch.GetTimestamp();
            output.Append(Encoding.UTF8.GetString(buffer, 0, n));
            for (int i = lineStart; onLine is not null && i < output.Length; i++)
            {
                if (output[i] == '\n')
                {
                    onLine(output.ToString(lineStart, i - lineStart).TrimEnd('\r'), readAt);
                    lineStart = i + 1;
                }
            }
            if (markerAfter is null && output.ToString().Contains(marker, StringComparison.Ordinal))
            {
                markerAfter = Stopwatch.GetElapsedTime(start);
            }
        }
        _ = Close(fds[0]);
        int status;
        byte* usage = stackalloc byte[144]; // struct rusage; ru_maxrss (KiB) at offset 32
        _ = Wait4(pid, &status, 0, usage);
        TimeSpan exitedAfter = Stopwatch.GetElapsedTime(start);
        int exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
        // struct rusage: ru_utime and ru_stime (struct timeval: seconds, microseconds) first, ru_maxrss (KiB) at 32.
        long cpuMicroseconds = (((long*)usage)[0] * 1_000_000) + ((long*)usage)[1] + (((long*)usage)[2] * 1_000_000) + ((long*)usage)[3];
        return new Result(markerAfter, exitedAfter, *(long*)(usage + 32), exit, output.ToString()) { CpuTime = TimeSpan.FromMicroseconds(cpuMicroseconds) };
    }

    // The few libc calls the benchmark's child process needs; the library's own interop is not its business.
    private const int OCloexec = 0x80000;
    private const short PollIn = 0x1;

    [LibraryImport("libc.so.6", EntryPoint = "pipe2", SetLastError = true)]
    private static partial int Pipe2(int* fds, int flags);

    [LibraryImport("libc.so.6", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc.so.6", EntryPoint = "read", SetLastError = true)]
    private static partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc.so.6", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc.so.6", EntryPoint = "posix_spawn_file_actions_init")]
    private static partial int FileActionsInit(byte* actions);

    [LibraryImport("libc.so.6", EntryPoint = "posix_spawn_file_actions_destroy")]
    private static partial int FileActionsDestroy(byte* actions);

    [LibraryImport("libc.so.6", EntryPoint = "posix_spawn_file_actions_adddup2")]
    private static partial int FileActionsAddDup2(byte* actions, int fd, int newFd);

    [LibraryImport("libc.so.6", EntryPoint = "posix_spawn_file_actions_addopen", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int FileActionsAddOpen(byte* actions, int fd, string path, int flags, uint mode);

    [LibraryImport("libc.so.6", EntryPoint = "posix_spawnp", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int PosixSpawnp(int* pid, string file, byte* actions, void* attributes, nint* argv, nint* envp);

    [LibraryImport("libc.so.6", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc.so.6", EntryPoint = "wait4")]
    private static partial int Wait4(int pid, int* status, int options, byte* usage);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short ReturnedEvents;
    }
}
