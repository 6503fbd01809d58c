using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VmmSharp.Tests.Support;

/// <summary>
/// A network namespace of the test's own (<c>ip netns add</c>), deleted on dispose: network tests touch no interface of
/// the host's. <see cref="Run{T}"/> runs code on a thread that joined it, so the TAPs and sockets that code opens
/// belong to the namespace (and stay there when other threads use them).
/// </summary>
internal sealed partial class NetNamespace : IDisposable
{
    private NetNamespace(string name) => Name = name;

    public string Name { get; }

    /// <summary>Why the host cannot make one (not root, no /dev/net/tun, no iproute2), or null when it can.</summary>
    public static string? Unavailable()
        => Environment.UserName != "root" ? "needs root"
            : !File.Exists("/dev/net/tun") ? "needs /dev/net/tun"
            : !TryIp("-V") ? "needs iproute2 (ip)"
            : null;

    public static NetNamespace Create()
    {
        var ns = new NetNamespace($"vmmsharp-{Guid.NewGuid():N}"[..20]);
        RunIp("netns add " + ns.Name, check: true);
        return ns;
    }

    /// <summary>Runs <c>ip -n NAME arguments</c>; fails the test if it fails.</summary>
    public string Ip(string arguments) => RunIp($"-n {Name} {arguments}", check: true);

    /// <summary>Runs <paramref name="action"/> on a thread in the namespace and returns its result (or rethrows its exception).</summary>
    public T Run<T>(Func<T> action)
    {
        T? result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using SafeFileHandle ns = File.OpenHandle($"/run/netns/{Name}");
                if (SetNs(ns, CloneNewNet) != 0)
                {
                    throw new IOException($"setns({Name}): errno {Marshal.GetLastPInvokeError()}");
                }
                result = action();
            }
#pragma warning disable CA1031 // rethrown on the caller's thread
            catch (Exception e)
#pragma warning restore CA1031
            {
                error = e;
            }
        });
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            throw new InvalidOperationException($"in network namespace {Name}: {error.Message}", error);
        }
        return result!;
    }

    public void Dispose() => RunIp("netns del " + Name, check: false);

    private const int CloneNewNet = 0x40000000;

    private static bool TryIp(string arguments)
    {
        try
        {
            RunIp(arguments, check: false);
            return true;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static string RunIp(string arguments, bool check)
    {
        var psi = new ProcessStartInfo("ip", arguments.Split(' ')) { RedirectStandardError = true, RedirectStandardOutput = true };
        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(10_000))
        {
            p.Kill();
            Assert.Fail($"ip {arguments} took longer than 10 s");
        }
        if (check)
        {
            Assert.True(p.ExitCode == 0, $"ip {arguments}: {stderr.GetAwaiter().GetResult()}");
        }
        return stdout.GetAwaiter().GetResult();
    }

    [LibraryImport("libc.so.6", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(SafeFileHandle fd, int nstype);
}
