using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace VmmSharp.State;

/// <summary>
/// Writes a component's state as little-endian fields into a growing buffer; <see cref="StateReader"/> reads
/// them back in the same order.
/// </summary>
public sealed class StateWriter
{
    private readonly ArrayBufferWriter<byte> _buffer;

    /// <summary>Creates an empty writer.</summary>
    /// <param name="initialCapacity">The initial buffer size in bytes.</param>
    public StateWriter(int initialCapacity = 256)
    {
        _buffer = new ArrayBufferWriter<byte>(Math.Max(initialCapacity, 16));
    }

    /// <summary>The bytes written so far.</summary>
    public ReadOnlySpan<byte> WrittenSpan => _buffer.WrittenSpan;

    /// <summary>The bytes written so far.</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.WrittenMemory;

    /// <summary>The number of bytes written so far.</summary>
    public int Length => _buffer.WrittenCount;

    /// <summary>Forgets what was written, keeping the buffer.</summary>
    public void Clear() => _buffer.Clear();

    /// <summary>Writes a byte.</summary>
    public void WriteByte(byte value)
    {
        _buffer.GetSpan(1)[0] = value;
        _buffer.Advance(1);
    }

    /// <summary>Writes a Boolean as one byte, 0 or 1.</summary>
    public void WriteBool(bool value) => WriteByte(value ? (byte)1 : (byte)0);

    /// <summary>Writes a 16-bit value.</summary>
    public void WriteUInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.GetSpan(2), value);
        _buffer.Advance(2);
    }

    /// <summary>Writes a 32-bit value.</summary>
    public void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
    }

    /// <summary>Writes a signed 32-bit value.</summary>
    public void WriteInt32(int value) => WriteUInt32(unchecked((uint)value));

    /// <summary>Writes a 64-bit value.</summary>
    public void WriteUInt64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
    }

    /// <summary>Writes a signed 64-bit value.</summary>
    public void WriteInt64(long value) => WriteUInt64(unchecked((ulong)value));

    /// <summary>Writes bytes as they are, with no length: the reader must know how many to read.</summary>
    public void WriteRaw(ReadOnlySpan<byte> bytes) => _buffer.Write(bytes);

    /// <summary>Writes a 32-bit length and then the bytes.</summary>
    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        WriteInt32(bytes.Length);
        _buffer.Write(bytes);
    }

    /// <summary>Writes a blittable struct's bytes with a 32-bit length; <see cref="StateReader.ReadStruct"/> reads it back.</summary>
    public void WriteStruct<T>(in T value)
        where T : unmanaged
        => WriteBytes(MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)));

    /// <summary>Writes a string as its UTF-8 bytes with a 32-bit length.</summary>
    public void WriteString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        int length = Encoding.UTF8.GetByteCount(value);
        WriteInt32(length);
        Encoding.UTF8.GetBytes(value, _buffer.GetSpan(length));
        _buffer.Advance(length);
    }

    /// <summary>Writes a nested component's state as a versioned, length-prefixed section.</summary>
    /// <param name="component">The component.</param>
    /// <remarks><see cref="StateReader.ReadSection"/> reads it back with the version and bounds the component's
    /// reads to the section, so a component that reads too little or too much is caught.</remarks>
    public void WriteSection(IStateful component)
    {
        ArgumentNullException.ThrowIfNull(component);
        WriteUInt16(component.StateVersion);
        int lengthAt = _buffer.WrittenCount;
        WriteInt32(0);
        int start = _buffer.WrittenCount;
        component.SaveState(this);
        int length = _buffer.WrittenCount - start;

        // ArrayBufferWriter exposes what it wrote read-only; the length is patched through the same memory.
        Span<byte> written = MemoryMarshal.AsMemory(_buffer.WrittenMemory).Span;
        BinaryPrimitives.WriteInt32LittleEndian(written[lengthAt..], length);
    }
}
