using Microsoft.Extensions.Logging;

namespace VmmSharp.Buses;

/// <summary>
/// The guest-physical MMIO space: dispatches the loads and stores KVM reports as MMIO exits to the device
/// registered for the address.
/// </summary>
/// <remarks>
/// Lookups neither lock nor allocate and take O(log n) time, so vCPU threads can dispatch concurrently;
/// devices serialise their own state. An access is routed by its first address only, as KVM reports it.
/// </remarks>
public sealed partial class MmioBus
{
    private readonly AddressMap<IMmioDevice> _map = new();
    private readonly ILogger? _logger;

    /// <summary>Creates an empty bus.</summary>
    /// <param name="logger">Receives a Debug message for each access no device handles; null for none.</param>
    public MmioBus(ILogger? logger = null)
    {
        _logger = logger;
    }

    /// <summary>Attaches <paramref name="device"/> to <paramref name="length"/> bytes of address space at <paramref name="baseAddress"/>.</summary>
    /// <param name="baseAddress">The first guest-physical address; the device sees offsets from it.</param>
    /// <param name="length">The size of the range in bytes, at least 1.</param>
    /// <param name="device">The device.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is 0 or the range passes the top of the address space.</exception>
    /// <exception cref="ArgumentException">The range overlaps a registered one; the message names both ranges.</exception>
    public void Register(ulong baseAddress, ulong length, IMmioDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (length == 0 || baseAddress + (length - 1) < baseAddress)
        {
            throw new ArgumentOutOfRangeException(
                nameof(length), length, $"MMIO range of 0x{length:x} byte(s) at 0x{baseAddress:x} is empty or passes the top of the address space");
        }
        _map.Add(baseAddress, baseAddress + (length - 1), device, static (first, last) => $"0x{first:x}-0x{last:x}", nameof(baseAddress));
    }

    /// <summary>Dispatches a guest load of <c>data.Length</c> bytes from <paramref name="address"/>.</summary>
    /// <param name="address">The guest-physical address read.</param>
    /// <param name="data">Receives the value; all ones (0xff bytes) when no device handles the address.</param>
    /// <returns>Whether a device handled the read.</returns>
    public bool Read(ulong address, Span<byte> data)
    {
        if (_map.TryFind(address, out IMmioDevice? device, out ulong offset))
        {
            device!.Read(offset, data);
            return true;
        }
        data.Fill(0xff);
        if (_logger is not null)
        {
            LogUnhandledRead(_logger, address, data.Length);
        }
        return false;
    }

    /// <summary>Dispatches a guest store of <c>data.Length</c> bytes to <paramref name="address"/>.</summary>
    /// <param name="address">The guest-physical address written.</param>
    /// <param name="data">The value; dropped when no device handles the address.</param>
    /// <returns>Whether a device handled the write.</returns>
    public bool Write(ulong address, ReadOnlySpan<byte> data)
    {
        if (_map.TryFind(address, out IMmioDevice? device, out ulong offset))
        {
            device!.Write(offset, data);
            return true;
        }
        if (_logger is not null)
        {
            LogUnhandledWrite(_logger, address, data.Length);
        }
        return false;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "unhandled MMIO read of {Size} byte(s) at 0x{Address:x}")]
    private static partial void LogUnhandledRead(ILogger logger, ulong address, int size);

    [LoggerMessage(Level = LogLevel.Debug, Message = "unhandled MMIO write of {Size} byte(s) at 0x{Address:x}")]
    private static partial void LogUnhandledWrite(ILogger logger, ulong address, int size);
}
