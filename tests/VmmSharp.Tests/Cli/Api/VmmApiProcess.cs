using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace VmmSharp.Tests.Cli.Api;

/// <summary>
/// <c>vmm run --api-sock PATH ...</c> as a separate process, and an <see cref="HttpClient"/> that talks HTTP/1.1 to it
/// over the Unix socket (<see cref="SocketsHttpHandler.ConnectCallback"/> with a <see cref="UnixDomainSocketEndPoint"/>).
/// Disposing kills the process if it still runs and removes the socket.
/// </summary>
internal sealed class VmmApiProcess : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private VmmApiProcess(Process process, string socketPath)
    {
        _process = process;
        SocketPath = socketPath;
        Client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancel) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancel);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        {
            BaseAddress = new Uri("http://localhost/"),
            Timeout = TimeSpan.FromSeconds(60),
        };
    }

    public string SocketPath { get; }

    public HttpClient Client { get; }

    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Starts vmm with <c>--api-sock</c> (a fresh path) and <paramref name="extra"/>; returns once the socket accepts.</summary>
    public static VmmApiProcess Start(params string[] extra)
    {
        string socket = Path.Combine(Path.GetTempPath(), $"vmmsharp-api-{Guid.NewGuid():N}.sock");
        return StartWith(socket, ["run", "--api-sock", socket, .. extra]);
    }

    /// <summary>Starts vmm with exactly <paramref name="args"/>, whose API socket is <paramref name="socket"/>.</summary>
    public static VmmApiProcess StartWith(string socket, string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "vmm.dll"));
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        var process = Process.Start(start)!;
        var vmm = new VmmApiProcess(process, socket);
        process.OutputDataReceived += (_, e) => Append(vmm._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(vmm._stderr, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            vmm.WaitUntilAccepting();
        }
        catch
        {
            vmm.Dispose();
            throw;
        }
        return vmm;
    }

    /// <summary>Waits for the process to end; its exit status.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            Assert.Fail($"vmm did not end within {timeout.TotalSeconds:0} s; stderr: {Stderr}");
        }
        _process.WaitForExit(); // the output readers finish
        return _process.ExitCode;
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Waits until the guest's console output contains <paramref name="text"/>.</summary>
    public void WaitForOutput(string text, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!Stdout.Contains(text, StringComparison.Ordinal))
        {
            if (clock.Elapsed > timeout || _process.HasExited)
            {
                Assert.Fail($"the guest did not print '{text}' within {timeout.TotalSeconds:0} s; stdout: {Stdout}; stderr: {Stderr}");
            }
            Thread.Sleep(20);
        }
    }

    public void Dispose()
    {
        Client.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        _process.Dispose();
        File.Delete(SocketPath);
    }

    private static void Append(StringBuilder into, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (into)
        {
            into.Append(line).Append('\n');
        }
    }

    private void WaitUntilAccepting()
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < StartTimeout)
        {
            if (_process.HasExited)
            {
                _process.WaitForExit();
                Assert.Fail($"vmm exited with status {_process.ExitCode} before its API socket accepted; stderr: {Stderr}");
            }
            if (File.Exists(SocketPath))
            {
                using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    probe.Connect(new UnixDomainSocketEndPoint(SocketPath));
                    return;
                }
                catch (SocketException)
                {
                    // Bound but not listening yet.
                }
            }
            Thread.Sleep(20);
        }
        Assert.Fail($"vmm's API socket did not accept within {StartTimeout.TotalSeconds:0} s; stderr: {Stderr}");
    }
}
