using Microsoft.Extensions.Logging;

namespace VmmSharp.Buses;

/// <summary>
/// The x86 I/O-port space: dispatches guest <c>in</c>/<c>out</c> to the device registered for the port.
/// </summary>
/// <remarks>
/// Lookups neither lock nor allocate and take O(log n) time, so vCPU threads can dispatch concurrently;
/// devices serialise their own state. An access is routed by its first port only, as KVM reports it.
/// </remarks>
public sealed partial class IoBus
{
    private readonly AddressMap<IPioDevice> _map = new();
    private readonly ILogger? _logger;

    /// <summary>Creates an empty bus.</summary>
    /// <param name="logger">Receives a Debug message for each access no device handles; null for none.</param>
    public IoBus(ILogger? logger = null)
    {
        _logger = logger;
    }

    /// <summary>Attaches <paramref name="device"/> to the ports <paramref name="basePort"/> to <paramref name="basePort"/> + <paramref name="length"/> - 1.</summary>
    /// <param name="basePort">The first port; the device sees offsets from it.</param>
    /// <param name="length">The number of ports, at least 1.</param>
    /// <param name="device">The device.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is 0 or the range passes port 0xffff.</exception>
    /// <exception cref="ArgumentException">The range overlaps a registered one; the message names both ranges.</exception>
    public void Register(ushort basePort, ushort length, IPioDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (length == 0 || basePort + length > 0x10000)
        {
            throw new ArgumentOutOfRangeException(
                nameof(length), length, $"port range of {length} port(s) at 0x{basePort:x4} is empty or passes port 0xffff");
        }
        _map.Add(basePort, (ulong)basePort + length - 1, device, static (first, last) => $"0x{first:x4}-0x{last:x4}", nameof(basePort));
    }

    /// <summary>Dispatches a guest read of <c>data.Length</c> bytes from <paramref name="port"/>.</summary>
    /// <param name="port">The port read.</param>
    /// <param name="data">Receives the value; all ones (0xff bytes) when no device handles the port, as on a PC's open bus.</param>
    /// <returns>Whether a device handled the read.</returns>
    public bool Read(ushort port, Span<byte> data)
    {
        if (_map.TryFind(port, out IPioDevice? device, out ulong offset))
        {
            device!.Read((ushort)offset, data);
            return true;
        }
        data.Fill(0xff);
        if (_logger is not null)
        {
            LogUnhandledRead(_logger, port, data.Length);
        }
        return false;
    }

    /// <summary>Dispatches a guest write of <c>data.Length</c> bytes to <paramref name="port"/>.</summary>
    /// <param name="port">The port written.</param>
    /// <param name="data">The value; dropped when no device handles the port.</param>
    /// <returns>Whether a device handled the write.</returns>
    public bool Write(ushort port, ReadOnlySpan<byte> data)
    {
        if (_map.TryFind(port, out IPioDevice? device, out ulong offset))
        {
            device!.Write((ushort)offset, data);
            return true;
        }
        if (_logger is not null)
        {
            LogUnhandledWrite(_logger, port, data.Length);
        }
        return false;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "unhandled I/O port read of {Size} byte(s) at 0x{Port:x4}")]
    private static partial void LogUnhandledRead(ILogger logger, ushort port, int size);

    [LoggerMessage(Level = LogLevel.Debug, Message = "unhandled I/O port write of {Size} byte(s) at 0x{Port:x4}")]
    private static partial void LogUnhandledWrite(ILogger logger, ushort port, int size);
}
