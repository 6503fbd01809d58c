using System.Buffers;
using System.Text.Json;
using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Virtio.Block;
using VmmSharp.Devices.Virtio.Console;
using VmmSharp.Devices.Virtio.Net;
using VmmSharp.Devices.Virtio.Rng;
using VmmSharp.Dispatch;
using VmmSharp.Machine;

namespace VmmSharp.Cli.Api;

/// <summary>
/// One metrics line, in the shape of Firecracker's (a JSON object per line, a group per component): the VMM's state,
/// the API's counters and request latency since the last line, the vCPU exits by reason, and each device's counters.
/// Counters are totals since the start; latencies cover the interval since the previous line.
/// </summary>
internal static class MetricsReport
{
    public static byte[] Build(DateTimeOffset now, string state, TimeSpan uptime, PcMachine? machine, VmConfiguration config,
        ConsoleOutput? uart, RequestStatistics requests, LifecycleLatencies lifecycle, MetricsSink sink)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("utc_timestamp_ms", now.ToUnixTimeMilliseconds());
            w.WriteStartObject("vmm");
            w.WriteString("state", state);
            w.WriteNumber("uptime_ms", (long)uptime.TotalMilliseconds);
            w.WriteEndObject();

            var api = requests.TakeInterval();
            w.WriteStartObject("api_server");
            w.WriteNumber("requests", api.Requests);
            w.WriteNumber("faults", api.Faults);
            w.WriteNumber("oversize_bodies", api.TooLarge);
            w.WriteEndObject();
            w.WriteStartObject("latencies_us");
            w.WriteStartObject("api_request");
            w.WriteNumber("count", api.Count);
            w.WriteNumber("min", api.MinUs);
            w.WriteNumber("avg", api.AvgUs);
            w.WriteNumber("max", api.MaxUs);
            w.WriteEndObject();
            foreach ((string name, long us) in lifecycle.Last())
            {
                w.WriteNumber(name, us);
            }
            w.WriteEndObject();

            if (machine is not null)
            {
                WriteVcpu(w, machine);
                WriteDevices(w, machine, config);
            }
            if (uart is not null)
            {
                w.WriteStartObject("uart");
                w.WriteNumber("written_bytes", uart.WrittenBytes);
                w.WriteNumber("dropped_bytes", uart.DroppedBytes);
                w.WriteEndObject();
            }
            w.WriteStartObject("metrics");
            w.WriteNumber("lines_written", sink.LinesWritten);
            w.WriteNumber("lines_dropped", sink.LinesDropped);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteVcpu(Utf8JsonWriter w, PcMachine machine)
    {
        IReadOnlyDictionary<VcpuEvent, long> exits = machine.Vm.ExitCounts();
        w.WriteStartObject("vcpu");
        w.WriteNumber("count", machine.Vm.Vcpus.Count);
        w.WriteNumber("exits_total", exits.Values.Sum());
        w.WriteStartObject("exits");
        foreach ((VcpuEvent ev, long n) in exits.OrderBy(e => e.Key))
        {
            w.WriteNumber(ev.ToString(), n);
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteDevices(Utf8JsonWriter w, PcMachine machine, VmConfiguration config)
    {
        // The virtio devices are created in the options' order: disks (root first), then cards, as ToMachineOptions lists them.
        string[] drives = [.. config.Drives.OrderByDescending(d => d.IsRootDevice).Select(d => d.DriveId)];
        string[] cards = [.. config.NetworkInterfaces.Select(n => n.IfaceId)];
        int disk = 0, card = 0;
        long notifyExits = 0;
        foreach (var transport in machine.VirtioDevices)
        {
            notifyExits += transport.NotifyExits;
            switch (transport.Device)
            {
                case VirtioBlock b:
                    w.WriteStartObject($"block_{Name(drives, disk++, "vd")}");
                    w.WriteNumber("completed_requests", b.Completed);
                    w.WriteEndObject();
                    break;
                case VirtioNet n:
                    w.WriteStartObject($"net_{Name(cards, card++, "eth")}");
                    w.WriteNumber("tx_packets_count", n.FramesSent);
                    w.WriteNumber("rx_packets_count", n.FramesReceived);
                    w.WriteNumber("rx_dropped_count", n.FramesDropped);
                    w.WriteEndObject();
                    break;
                case VirtioRng r:
                    w.WriteStartObject("entropy");
                    w.WriteNumber("bytes_provided", r.BytesProvided);
                    w.WriteEndObject();
                    break;
                case VirtioConsole c:
                    w.WriteStartObject("virtio_console");
                    w.WriteNumber("bytes_transmitted", c.BytesTransmitted);
                    w.WriteEndObject();
                    break;
            }
        }
        w.WriteStartObject("virtio_mmio");
        w.WriteNumber("notify_exits", notifyExits);
        w.WriteEndObject();
    }

    private static string Name(string[] ids, int index, string prefix) => index < ids.Length ? ids[index] : $"{prefix}{index}";
}
