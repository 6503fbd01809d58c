using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace VmmSharp.Cli.Bench;

/// <summary>
/// <c>vmm bench api</c>: what <c>--api-sock</c> costs at startup. Alternates a plain <c>vmm run --kernel MARKER</c> with
/// <c>vmm run --api-sock PATH</c> driven by a client here (PUT /boot-source, PUT /machine-config, InstanceStart on one
/// connection, as soon as the socket accepts), and reports the medians: time to the socket accepting, time to the
/// guest's marker, and peak RSS, for both.
/// </summary>
internal static class ApiBench
{
    private const string Marker = "VMM-MARKER";

    public static int Run(string? guest, string? vmm, int runs)
    {
        guest ??= StartupBench.BuildMarkerGuest();
        vmm ??= Environment.ProcessPath ?? throw new VmmException("cannot tell where the vmm binary is; pass --vmm");
        if (!File.Exists(guest))
        {
            throw new VmmException($"marker guest '{guest}' not found");
        }
        var plain = new List<ChildProcess.Result>();
        var api = new List<ChildProcess.Result>();
        var accepts = new List<double>();
        Console.WriteLine($"{runs} runs each, alternating; guest {guest}; vmm {vmm}");
        for (int i = 0; i < runs; i++)
        {
            plain.Add(Once([vmm, "run", "--kernel", guest, "--mem", "128M"], "plain", null));
            string socket = Path.Combine(Path.GetTempPath(), $"vmm-bench-api-{Environment.ProcessId}-{i}.sock");
            File.Delete(socket);
            long start = Stopwatch.GetTimestamp();
            var client = Task.Run(() => Drive(socket, guest, start));
            api.Add(Once([vmm, "run", "--api-sock", socket], "api", client));
            accepts.Add(client.Result);
        }
        double plainMs = Median(plain, r => r.MarkerAfter!.Value.TotalMilliseconds), apiMs = Median(api, r => r.MarkerAfter!.Value.TotalMilliseconds);
        double plainMiB = Median(plain, r => r.PeakRssKiB / 1024.0), apiMiB = Median(api, r => r.PeakRssKiB / 1024.0);
        double acceptMs = Statistics.Median(accepts);
        Console.WriteLine($"api: socket accepts after {acceptMs:0.0} ms; guest output after {apiMs:0.0} ms (plain run {plainMs:0.0} ms, {apiMs - plainMs:+0.0;-0.0} ms); " +
            $"rss {apiMiB:0.0} MiB (plain {plainMiB:0.0} MiB, {apiMiB - plainMiB:+0.0;-0.0} MiB)");
        return 0;
    }

    private static ChildProcess.Result Once(string[] argv, string name, Task<double>? client)
    {
        ChildProcess.Result r = ChildProcess.Run(argv, Marker, TimeSpan.FromSeconds(30));
        if (r.MarkerAfter is null)
        {
            string why = client is { IsFaulted: true } ? $"; the client failed: {client.Exception!.InnerException!.Message}" : "";
            throw new VmmException($"{name}: vmm did not print {Marker} (exit status {r.ExitStatus}){why}; it printed: {r.Output.Trim()}");
        }
        Console.WriteLine($"  {name,-5} marker {r.MarkerAfter.Value.TotalMilliseconds,7:0.0} ms  {r.PeakRssKiB / 1024.0,6:0.0} MiB  status {r.ExitStatus}" +
            (client is null ? "" : $"  socket accepted after {client.Result,6:0.0} ms"));
        return r;
    }

    /// <summary>Connects as soon as the socket accepts, configures and starts the guest; returns ms from spawn to the accept.</summary>
    private static double Drive(string socketPath, string guest, long start)
    {
        var deadline = Stopwatch.StartNew();
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        while (true)
        {
            try
            {
                socket.Connect(new UnixDomainSocketEndPoint(socketPath));
                break;
            }
            catch (SocketException) when (deadline.Elapsed < TimeSpan.FromSeconds(20))
            {
                Thread.Sleep(0);
            }
        }
        double accepted = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        string kernel = guest.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
        Put(socket, "/boot-source", $$"""{"kernel_image_path": "{{kernel}}"}""");
        Put(socket, "/machine-config", """{"vcpu_count": 1, "mem_size_mib": 128}""");
        Put(socket, "/actions", """{"action_type": "InstanceStart"}""");
        return accepted;
    }

    /// <summary>One HTTP/1.1 PUT on a kept-alive connection; throws unless the answer is 204.</summary>
    private static void Put(Socket socket, string path, string json)
    {
        byte[] body = Encoding.UTF8.GetBytes(json);
        socket.Send(Encoding.ASCII.GetBytes($"PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n"));
        socket.Send(body);
        byte[] buffer = new byte[4096];
        int length = 0;
        int headerEnd;
        while ((headerEnd = Encoding.ASCII.GetString(buffer, 0, length).IndexOf("\r\n\r\n", StringComparison.Ordinal)) < 0)
        {
            int n = socket.Receive(buffer.AsSpan(length));
            if (n == 0)
            {
                throw new VmmException($"PUT {path}: the connection closed before the answer");
            }
            length += n;
        }
        string head = Encoding.ASCII.GetString(buffer, 0, headerEnd);
        if (!head.StartsWith("HTTP/1.1 204", StringComparison.Ordinal))
        {
            throw new VmmException($"PUT {path}: {head.Split('\r')[0]}: {Encoding.UTF8.GetString(buffer, headerEnd + 4, length - headerEnd - 4)}");
        }
    }

    private static double Median(List<ChildProcess.Result> runs, Func<ChildProcess.Result, double> value) => Statistics.Median(runs.Select(value));
}
