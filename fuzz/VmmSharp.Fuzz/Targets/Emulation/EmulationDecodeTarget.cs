using VmmSharp.Emulation;

namespace VmmSharp.Fuzz.Targets.Emulation;

/// <summary>
/// The emulation fallback's guest-controlled inputs: the failed instruction's bytes (decoded and classified) and the
/// guest's page tables (walked). Input: byte 0 picks the code size and the paging mode, bytes 1-8 a linear address,
/// bytes 9-23 the instruction; the whole input, from address 0, is the guest's RAM holding the page tables.
/// </summary>
internal sealed class EmulationDecodeTarget : IFuzzTarget
{
    // Made on the first input, not when the targets are listed: instrumented library code must not run before the
    // fork server has mapped AFL's coverage area (it crashed every target's fuzzer at start-up).
    private InstructionDecoder? _decoder;

    public string Name => "emulation-decode";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 9)
        {
            return;
        }
        int bitness = (input[0] & 3) switch { 0 => 16, 1 => 32, _ => 64 };
        ulong linear = BitConverter.ToUInt64(input[1..9]);
        ReadOnlySpan<byte> code = input[9..];
        _decoder ??= new InstructionDecoder();
        FallbackOperation operation = _decoder.Decode(code, bitness, 0x1000, out Iced.Intel.Instruction instruction);
        FuzzCheckException.Check(operation == FallbackOperation.Unsupported || InstructionDecoder.Classify(instruction) == operation,
            $"{instruction}: decoded as {operation}, classified as {InstructionDecoder.Classify(instruction)}");
        FuzzCheckException.Check(instruction.Length <= 15, $"{instruction}: {instruction.Length} bytes");

        var ram = new Ram(input.ToArray());
        var mode = (PagingMode)((input[0] >> 2) % 5);
        var context = new PagingContext(mode, 0, WriteProtect: (input[0] & 0x20) != 0, NoExecute: (input[0] & 0x40) != 0, LargePages: true);
        var access = (AccessKind)((input[0] >> 7) * (uint)AccessKind.Write);
        if (PageWalker.Translate(ram, context, linear, access, out ulong physical, out _))
        {
            FuzzCheckException.Check((physical & 0xfff) == (linear & 0xfff) || mode == PagingMode.Off,
                $"0x{linear:x} translated to 0x{physical:x}: the page offset changed");
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("int3-64.bin", [2, 0, 0, 0, 0, 0, 0, 0, 0, 0xcc]);
        yield return ("cmpxchg16b-64.bin", [0x0e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x48, 0x0f, 0xc7, 0x0e]);
        yield return ("verw-32.bin", [0x05, 0, 0x20, 0, 0, 0, 0, 0, 0, 0x0f, 0x00, 0xe8]);
        yield return ("vmovdqu-64.bin", [0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0xc5, 0xfe, 0x6f, 0x07]);
    }

    /// <summary>The input as the guest's RAM; MMIO everywhere else.</summary>
    private sealed class Ram(byte[] bytes) : IGuestPhysicalSpace
    {
        public bool TryGetRam(ulong address, int length, bool write, out Span<byte> ram)
        {
            if (address >= (ulong)bytes.Length || (ulong)length > (ulong)bytes.Length - address)
            {
                ram = default;
                return false;
            }
            ram = bytes.AsSpan((int)address, length);
            return true;
        }

        public void MmioRead(ulong address, Span<byte> data) => data.Fill(0xff);

        public void MmioWrite(ulong address, ReadOnlySpan<byte> data)
        {
        }
    }
}
