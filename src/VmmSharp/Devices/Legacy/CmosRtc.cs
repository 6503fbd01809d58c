using VmmSharp.Buses;

namespace VmmSharp.Devices.Legacy;

/// <summary>
/// The PC's MC146818 real-time clock and its 128 bytes of CMOS memory, at ports 0x70 (index; bit 7 masks NMI)
/// and 0x71 (data): register it at <see cref="DefaultPort"/> for <see cref="PortCount"/> ports.
/// </summary>
/// <remarks>
/// <para>The clock registers read the host's clock (UTC) at the moment of the read, in the format register B
/// asks for (BCD or binary, 12- or 24-hour); the update-in-progress flag is always clear, so a guest never waits
/// for an update cycle. Guest writes to the clock registers are ignored: the clock follows the host.</para>
/// <para>The memory-size bytes are filled in as a PC BIOS does, so guests that read them (and firmware) see the RAM.
/// Periodic, alarm and update interrupts are not emulated; register C reads 0.</para>
/// </remarks>
public sealed partial class CmosRtc : IPioDevice
{
    /// <summary>The index port; the data port follows it.</summary>
    public const ushort DefaultPort = 0x70;

    /// <summary>The number of ports the device decodes (index and data).</summary>
    public const ushort PortCount = 2;

    private const int Seconds = 0x00, Minutes = 0x02, Hours = 0x04, DayOfWeek = 0x06;
    private const int DayOfMonth = 0x07, Month = 0x08, Year = 0x09, Century = 0x32;
    private const int RegisterA = 0x0a, RegisterB = 0x0b, RegisterC = 0x0c, RegisterD = 0x0d;
    private const byte BBinary = 0x04, B24Hour = 0x02;
    private const byte AUpdateInProgress = 0x80;
    private const byte DValidRam = 0x80;

    private const ulong KiB = 1024, MiB = 1024 * KiB, Chunk64K = 64 * KiB;

    private readonly Lock _lock = new();
    private readonly byte[] _cmos = new byte[128];
    private readonly TimeProvider _time;
    private byte _index;

    /// <summary>Creates the clock with CMOS memory describing the guest's RAM.</summary>
    /// <param name="ramBelow4G">Bytes of RAM below 4 GiB (starting at 0).</param>
    /// <param name="ramAbove4G">Bytes of RAM at and above 4 GiB.</param>
    /// <param name="time">The host clock; <see cref="TimeProvider.System"/> when null.</param>
    public CmosRtc(ulong ramBelow4G, ulong ramAbove4G = 0, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _cmos[RegisterA] = 0x26; // 32.768 kHz time base, 1024 Hz rate: what a BIOS programs
        _cmos[RegisterB] = B24Hour; // BCD, 24-hour
        _cmos[RegisterD] = DValidRam;
        WriteMemorySizes(ramBelow4G, ramAbove4G);
    }

    /// <summary>Whether the guest last set bit 7 of the index port, masking NMIs.</summary>
    public bool NmiMasked { get; private set; }

    /// <inheritdoc/>
    public void Read(ushort offset, Span<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                // The index port is write-only; it reads as an open bus, as in QEMU.
                data[i] = offset + i == 1 ? ReadRegister(_index) : (byte)0xff;
            }
        }
    }

    /// <inheritdoc/>
    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                if (offset + i == 0)
                {
                    _index = (byte)(data[i] & 0x7f);
                    NmiMasked = (data[i] & 0x80) != 0;
                }
                else if (offset + i == 1)
                {
                    WriteRegister(_index, data[i]);
                }
            }
        }
    }

    private byte ReadRegister(int index)
    {
        switch (index)
        {
            case Seconds:
            case Minutes:
            case Hours:
            case DayOfWeek:
            case DayOfMonth:
            case Month:
            case Year:
            case Century:
                return ReadClock(index, _time.GetUtcNow().UtcDateTime);
            case RegisterA:
                return (byte)(_cmos[RegisterA] & ~AUpdateInProgress);
            case RegisterC:
                return 0;
            default:
                return _cmos[index];
        }
    }

    private void WriteRegister(int index, byte value)
    {
        switch (index)
        {
            case Seconds or Minutes or Hours or DayOfWeek or DayOfMonth or Month or Year or Century:
            case RegisterC or RegisterD:
                break; // the clock follows the host; C and D are read-only
            case RegisterA:
                _cmos[RegisterA] = (byte)(value & ~AUpdateInProgress);
                break;
            default:
                _cmos[index] = value;
                break;
        }
    }

    private byte ReadClock(int index, DateTime now)
    {
        bool binary = (_cmos[RegisterB] & BBinary) != 0;
        switch (index)
        {
            case Seconds:
                return Encode(now.Second, binary);
            case Minutes:
                return Encode(now.Minute, binary);
            case Hours:
                if ((_cmos[RegisterB] & B24Hour) != 0)
                {
                    return Encode(now.Hour, binary);
                }
                // 12-hour mode: 12, 1..11, with bit 7 set after noon.
                int hour12 = now.Hour % 12 == 0 ? 12 : now.Hour % 12;
                return (byte)(Encode(hour12, binary) | (now.Hour >= 12 ? 0x80 : 0));
            case DayOfWeek:
                return Encode((int)now.DayOfWeek + 1, binary); // Sunday is 1
            case DayOfMonth:
                return Encode(now.Day, binary);
            case Month:
                return Encode(now.Month, binary);
            case Year:
                return Encode(now.Year % 100, binary);
            default:
                return Encode(now.Year / 100, binary);
        }
    }

    private static byte Encode(int value, bool binary) => binary ? (byte)value : (byte)(((value / 10) << 4) | (value % 10));

    private void WriteMemorySizes(ulong below4G, ulong above4G)
    {
        // Conventional memory in KiB, at most 640.
        SetWord(0x15, Math.Min(below4G / KiB, 640));

        // Extended memory above 1 MiB in KiB, capped at 0xffff (so at 64 MiB); stored twice, as BIOSes do.
        ulong extended = below4G > MiB ? Math.Min((below4G - MiB) / KiB, 0xffff) : 0;
        SetWord(0x17, extended);
        SetWord(0x30, extended);

        // Memory between 16 MiB and 4 GiB in 64 KiB blocks.
        SetWord(0x34, below4G > 16 * MiB ? Math.Min((below4G - (16 * MiB)) / Chunk64K, 0xffff) : 0);

        // Memory above 4 GiB in 64 KiB blocks, three bytes.
        ulong high = Math.Min(above4G / Chunk64K, 0xff_ffff);
        _cmos[0x5b] = (byte)high;
        _cmos[0x5c] = (byte)(high >> 8);
        _cmos[0x5d] = (byte)(high >> 16);

        // The standard checksum over 0x10-0x2d, big-endian at 0x2e.
        int sum = 0;
        for (int i = 0x10; i <= 0x2d; i++)
        {
            sum += _cmos[i];
        }
        _cmos[0x2e] = (byte)(sum >> 8);
        _cmos[0x2f] = (byte)sum;
    }

    private void SetWord(int index, ulong value)
    {
        _cmos[index] = (byte)value;
        _cmos[index + 1] = (byte)(value >> 8);
    }
}
