using System.Text;
using Iced.Intel;
using VmmSharp.Kvm;
using VmmSharp.Memory;

namespace VmmSharp.Dispatch;

/// <summary>Describes where a vCPU stands, with the instruction at RIP disassembled, for error messages.</summary>
internal static class FaultReport
{
    /// <summary>E.g. "RIP 0x1000 (64-bit): out dx,al [ee]".</summary>
    public static string Describe(KvmVcpu vcpu, GuestMemory? memory, ReadOnlySpan<byte> knownBytes = default)
    {
        try
        {
            vcpu.GetRegs(out KvmRegs regs);
            vcpu.GetSregs(out KvmSregs sregs);
            int bitness = sregs.Cs.L != 0 && (sregs.Efer & 0x400) != 0 ? 64 : sregs.Cs.Db != 0 && (sregs.Cr0 & 1) != 0 ? 32 : 16;
            ulong linear = bitness == 64 ? regs.Rip : sregs.Cs.Base + regs.Rip;
            var sb = new StringBuilder();
            sb.Append($"RIP 0x{regs.Rip:x} ({bitness}-bit, CPL {sregs.Cs.Selector & 3})");
            byte[] code = knownBytes.ToArray();
            if (code.Length == 0 && memory is not null)
            {
                ulong? physical = (sregs.Cr0 & 0x8000_0000) != 0 ? vcpu.Translate(linear) : linear;
                if (physical is { } pa)
                {
                    code = new byte[15];
                    int n = 0;
                    while (n < code.Length && memory.TryRead(pa + (ulong)n, code.AsSpan(n, 1)))
                    {
                        n++;
                    }
                    code = code[..n];
                }
            }
            sb.Append(": ");
            sb.Append(code.Length == 0 ? "instruction bytes not readable" : Disassemble(code, bitness, regs.Rip));
            return sb.ToString();
        }
        catch (KvmException e)
        {
            return $"state unavailable ({e.Message})";
        }
    }

    /// <summary>Disassembles the first instruction of <paramref name="code"/> with Iced, with its bytes.</summary>
    public static string Disassemble(ReadOnlySpan<byte> code, int bitness, ulong ip)
    {
        byte[] bytes = code.ToArray();
        var decoder = Iced.Intel.Decoder.Create(bitness, new ByteArrayCodeReader(bytes), ip);
        decoder.Decode(out Instruction instruction);
        string hex = Convert.ToHexString(bytes, 0, instruction.IsInvalid ? bytes.Length : Math.Min(instruction.Length, bytes.Length)).ToLowerInvariant();
        if (instruction.IsInvalid)
        {
            return $"(undecodable) [{hex}]";
        }
        var formatter = new NasmFormatter();
        var output = new StringOutput();
        formatter.Format(instruction, output);
        return $"{output.ToStringAndReset()} [{hex}]";
    }
}
