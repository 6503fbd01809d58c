using System.Buffers.Binary;
using System.Text;

namespace VmmSharp.Arch.X86.Acpi;

/// <summary>Builds one ACPI system description table: the 36-byte header, a body, and the checksum.</summary>
internal sealed class AcpiTable
{
    /// <summary>The size of the standard header.</summary>
    public const int HeaderSize = 36;

    private readonly List<byte> _bytes = [];

    public AcpiTable(string signature, byte revision)
    {
        _bytes.AddRange(Encoding.ASCII.GetBytes(signature));
        U32(0);                                     // length, filled in by ToArray
        U8(revision);
        U8(0);                                      // checksum, filled in by ToArray
        _bytes.AddRange(AcpiTables.OemId);
        _bytes.AddRange(Encoding.ASCII.GetBytes("VMMSHARP"));   // OEM table id
        U32(1);                                     // OEM revision
        _bytes.AddRange(Encoding.ASCII.GetBytes("VMMS"));        // creator id
        U32(1);                                     // creator revision
    }

    public int Length => _bytes.Count;

    public AcpiTable U8(byte value)
    {
        _bytes.Add(value);
        return this;
    }

    public AcpiTable U16(ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        _bytes.AddRange(b.ToArray());
        return this;
    }

    public AcpiTable U32(uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _bytes.AddRange(b.ToArray());
        return this;
    }

    public AcpiTable U64(ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        _bytes.AddRange(b.ToArray());
        return this;
    }

    public AcpiTable Bytes(ReadOnlySpan<byte> bytes)
    {
        _bytes.AddRange(bytes.ToArray());
        return this;
    }

    /// <summary>Pads with zeros up to <paramref name="offset"/> from the table's start.</summary>
    public AcpiTable At(int offset)
    {
        if (offset < _bytes.Count)
        {
            throw new InvalidOperationException($"ACPI table field at {offset} would overwrite bytes up to {_bytes.Count}");
        }
        while (_bytes.Count < offset)
        {
            _bytes.Add(0);
        }
        return this;
    }

    /// <summary>An I/O-port Generic Address Structure of <paramref name="bits"/> bits accessed byte-wise.</summary>
    public AcpiTable IoRegister(ushort port, byte bits = 8)
        => U8(1).U8(bits).U8(0).U8(1).U64(port); // SystemIO, width, offset 0, byte access

    public byte[] ToArray()
    {
        byte[] table = [.. _bytes];
        BinaryPrimitives.WriteUInt32LittleEndian(table.AsSpan(4), (uint)table.Length);
        table[9] = Checksum(table);
        return table;
    }

    /// <summary>The byte that makes <paramref name="bytes"/> sum to zero (with its own place holding zero).</summary>
    public static byte Checksum(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (byte b in bytes)
        {
            sum += b;
        }
        return (byte)-sum;
    }
}
