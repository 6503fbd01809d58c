using System.Buffers.Binary;
using System.Text;

namespace VmmSharp.Arch.X86.Acpi;

/// <summary>The few AML encodings the DSDT needs (ACPI 6.5 §20), as byte arrays.</summary>
internal static class Aml
{
    private const byte NameOp = 0x08, StringPrefix = 0x0d, BytePrefix = 0x0a, DWordPrefix = 0x0c, BufferOp = 0x11, ScopeOp = 0x10;

    /// <summary><c>Scope (\_SB) { body }</c>.</summary>
    public static byte[] ScopeSystemBus(ReadOnlySpan<byte> body) => [ScopeOp, .. PkgLength(5 + body.Length), (byte)'\\', .. "_SB_"u8, .. body];

    /// <summary><c>Device (name) { body }</c>.</summary>
    public static byte[] Device(string name, ReadOnlySpan<byte> body) => [0x5b, 0x82, .. PkgLength(4 + body.Length), .. NameSeg(name), .. body];

    /// <summary><c>Name (name, "text")</c>.</summary>
    public static byte[] NameString(string name, string text) => [NameOp, .. NameSeg(name), StringPrefix, .. Encoding.ASCII.GetBytes(text), 0];

    /// <summary><c>Name (name, value)</c> with the shortest integer encoding.</summary>
    public static byte[] NameInteger(string name, uint value) => [NameOp, .. NameSeg(name), .. Integer(value)];

    /// <summary><c>Name (name, ResourceTemplate () { descriptors })</c>; the end tag is added.</summary>
    public static byte[] NameResources(string name, ReadOnlySpan<byte> descriptors)
    {
        byte[] bytes = [.. descriptors, 0x79, 0x00];
        byte[] size = Integer((uint)bytes.Length);
        return [NameOp, .. NameSeg(name), BufferOp, .. PkgLength(size.Length + bytes.Length), .. size, .. bytes];
    }

    /// <summary><c>Memory32Fixed (ReadWrite, base, length)</c>.</summary>
    public static byte[] Memory32Fixed(uint address, uint length)
    {
        byte[] d = [0x86, 0x09, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(4), address);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(8), length);
        return d;
    }

    /// <summary><c>Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }</c>.</summary>
    public static byte[] EdgeInterrupt(uint gsi)
    {
        const byte consumer = 1, edge = 2;
        byte[] d = [0x89, 0x06, 0x00, consumer | edge, 0x01, 0, 0, 0, 0];
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(5), gsi);
        return d;
    }

    /// <summary>A PkgLength for <paramref name="contentLength"/> bytes that follow it; the encoding counts itself.</summary>
    public static byte[] PkgLength(int contentLength)
    {
        if (contentLength + 1 <= 0x3f)
        {
            return [(byte)(contentLength + 1)];
        }
        if (contentLength + 2 <= 0xfff)
        {
            int n = contentLength + 2;
            return [(byte)((1 << 6) | (n & 0xf)), (byte)(n >> 4)];
        }
        if (contentLength + 3 <= 0xfffff)
        {
            int n = contentLength + 3;
            return [(byte)((2 << 6) | (n & 0xf)), (byte)(n >> 4), (byte)(n >> 12)];
        }
        throw new ArgumentOutOfRangeException(nameof(contentLength), contentLength, "AML package too large");
    }

    private static byte[] Integer(uint value) => value switch
    {
        0 => [0x00],
        1 => [0x01],
        <= 0xff => [BytePrefix, (byte)value],
        _ => [DWordPrefix, (byte)value, (byte)(value >> 8), (byte)(value >> 16), (byte)(value >> 24)],
    };

    private static byte[] NameSeg(string name)
    {
        if (name.Length != 4)
        {
            throw new ArgumentException($"AML name '{name}' is not 4 characters", nameof(name));
        }
        return Encoding.ASCII.GetBytes(name);
    }
}
