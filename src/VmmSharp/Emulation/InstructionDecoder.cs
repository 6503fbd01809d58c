using Iced.Intel;

namespace VmmSharp.Emulation;

/// <summary>
/// Decodes the failed instruction's bytes with Iced and says what the fallback does with it. The input is
/// guest-controlled: any bytes give a decision, never an exception. Reuses its decoders: decoding allocates nothing.
/// </summary>
public sealed class InstructionDecoder
{
    private readonly Reader _reader = new();
    private readonly Decoder _decoder16, _decoder32, _decoder64;

    /// <summary>Creates a decoder for 16-, 32- and 64-bit code.</summary>
    public InstructionDecoder()
    {
        _decoder16 = Decoder.Create(16, _reader);
        _decoder32 = Decoder.Create(32, _reader);
        _decoder64 = Decoder.Create(64, _reader);
    }

    /// <summary>Whether the last <see cref="Decode"/> ran out of bytes: the instruction continues past those given.</summary>
    public bool Truncated { get; private set; }

    /// <summary>
    /// Decodes the instruction at the start of <paramref name="bytes"/> (at most 15 are used) as <paramref name="bitness"/>-bit
    /// code at <paramref name="ip"/>, and classifies it. An invalid or truncated instruction is <see cref="FallbackOperation.Unsupported"/>.
    /// </summary>
    public FallbackOperation Decode(ReadOnlySpan<byte> bytes, int bitness, ulong ip, out Instruction instruction)
    {
        Decoder decoder = bitness switch
        {
            16 => _decoder16,
            32 => _decoder32,
            64 => _decoder64,
            _ => throw new ArgumentOutOfRangeException(nameof(bitness), bitness, "16, 32 or 64"),
        };
        _reader.Reset(bytes);
        decoder.IP = ip;
        decoder.Decode(out instruction);
        Truncated = decoder.LastError == DecoderError.NoMoreBytes;
        if (instruction.IsInvalid || decoder.LastError != DecoderError.None)
        {
            return FallbackOperation.Unsupported;
        }
        return Classify(instruction);
    }

    /// <summary>What the fallback does with <paramref name="instruction"/>: a pure function of the decoded instruction.</summary>
    public static FallbackOperation Classify(in Instruction instruction) => instruction.Mnemonic switch
    {
        Mnemonic.Int3 or Mnemonic.Int or Mnemonic.Into or Mnemonic.Int1 => FallbackOperation.SoftwareInterrupt,
        Mnemonic.Cmpxchg16b => FallbackOperation.CompareExchange16,
        Mnemonic.Verw => FallbackOperation.VerifyWrite,
        Mnemonic.Wait or Mnemonic.Fnclex or Mnemonic.Emms => FallbackOperation.X87Control,
        Mnemonic.Ldmxcsr or Mnemonic.Stmxcsr or Mnemonic.Vldmxcsr or Mnemonic.Vstmxcsr => FallbackOperation.Mxcsr,
        Mnemonic.Xgetbv => FallbackOperation.GetExtendedControl,
        Mnemonic.Xsave or Mnemonic.Xsave64 or Mnemonic.Xsaveopt or Mnemonic.Xsaveopt64 or Mnemonic.Xsavec or Mnemonic.Xsavec64
            or Mnemonic.Xsaves or Mnemonic.Xsaves64 => FallbackOperation.ExtendedStateSave,
        Mnemonic.Xrstor or Mnemonic.Xrstor64 or Mnemonic.Xrstors or Mnemonic.Xrstors64 => FallbackOperation.ExtendedStateRestore,
        Mnemonic.Clwb or Mnemonic.Clflushopt => FallbackOperation.CacheLineWriteBack,
        _ when VectorMoves.IsVectorMove(instruction) => FallbackOperation.VectorMove,
        _ => FallbackOperation.Unsupported,
    };

    /// <summary>A code reader over a copy of at most 15 bytes, reset for each instruction.</summary>
    private sealed class Reader : CodeReader
    {
        private readonly byte[] _bytes = new byte[15];
        private int _length;
        private int _position;

        public void Reset(ReadOnlySpan<byte> bytes)
        {
            _length = Math.Min(bytes.Length, _bytes.Length);
            bytes[.._length].CopyTo(_bytes);
            _position = 0;
        }

        public override int ReadByte() => _position < _length ? _bytes[_position++] : -1;
    }
}
