using System.Buffers.Binary;
using VmmSharp.Buses;

namespace VmmSharp.Fuzz.Support;

/// <summary>One guest access to a device's ports: a read or a write of 1, 2 or 4 bytes at an offset.</summary>
internal readonly record struct PortOp(bool IsWrite, ushort Offset, int Width, uint Value)
{
    /// <summary>Performs the access on <paramref name="device"/>; returns the value a read saw (0 for a write).</summary>
    public uint ApplyTo(IPioDevice device)
    {
        Span<byte> data = stackalloc byte[4];
        data.Clear();
        if (IsWrite)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(data, Value);
            device.Write(Offset, data[..Width]);
            return 0;
        }
        device.Read(Offset, data[..Width]);
        return BinaryPrimitives.ReadUInt32LittleEndian(data);
    }
}

/// <summary>
/// A fuzz input read as a sequence of port accesses, the way a guest drives a device's register interface. Each
/// access is a control byte, then for a write its value's bytes (little-endian):
/// bit 7 write (else read), bits 5-6 the width (1, 2, 4, 1), bits 0-4 the offset (0-31, so past every device's ports).
/// A last access cut short is dropped.
/// </summary>
internal static class PortProgram
{
    private const int WriteBit = 0x80;
    private static readonly int[] Widths = [1, 2, 4, 1];

    public static List<PortOp> Decode(ReadOnlySpan<byte> input)
    {
        var ops = new List<PortOp>(input.Length);
        Span<byte> value = stackalloc byte[4];
        int at = 0;
        while (at < input.Length)
        {
            byte control = input[at++];
            bool write = (control & WriteBit) != 0;
            int width = Widths[(control >> 5) & 3];
            var offset = (ushort)(control & 0x1f);
            if (!write)
            {
                ops.Add(new PortOp(false, offset, width, 0));
                continue;
            }
            if (at + width > input.Length)
            {
                break;
            }
            value.Clear();
            input.Slice(at, width).CopyTo(value);
            at += width;
            ops.Add(new PortOp(true, offset, width, BinaryPrimitives.ReadUInt32LittleEndian(value)));
        }
        return ops;
    }

    /// <summary>Builds programs for the seed corpus.</summary>
    public sealed class Builder
    {
        private readonly List<byte> _bytes = [];

        public Builder Write(int offset, uint value, int width = 1)
        {
            _bytes.Add((byte)(WriteBit | (WidthCode(width) << 5) | (offset & 0x1f)));
            for (int i = 0; i < width; i++)
            {
                _bytes.Add((byte)(value >> (8 * i)));
            }
            return this;
        }

        public Builder Read(int offset, int width = 1)
        {
            _bytes.Add((byte)((WidthCode(width) << 5) | (offset & 0x1f)));
            return this;
        }

        public Builder Repeat(int times, Func<Builder, Builder> body)
        {
            for (int i = 0; i < times; i++)
            {
                body(this);
            }
            return this;
        }

        public byte[] ToArray() => [.. _bytes];

        private static int WidthCode(int width) => width switch
        {
            1 => 0,
            2 => 1,
            4 => 2,
            _ => throw new ArgumentOutOfRangeException(nameof(width), width, "a port access is 1, 2 or 4 bytes wide"),
        };
    }
}
