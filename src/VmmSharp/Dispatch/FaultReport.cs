using System.Text;
using Iced.Intel;
using VmmSharp.Kvm;
using VmmSharp.Memory;

namespace VmmSharp.Dispatch;

/// <summary>Describes where a vCPU stands, with the instruction at RIP disassembled, for error messages.</summary>
internal static class FaultReport
{
    /// <summary>E.g. "RIP 0x1000 (64-bit): out dx,al [ee]".</summary>
    /// <remarks>
    /// At a port-I/O exit RIP is at the IN or OUT on VMX/SVM, past it where KVM's emulator ran it (and on PVM); with
    /// <paramref name="afterPortIo"/> and no port instruction at RIP, the report also names the one that ends at RIP.
    /// </remarks>
    public static string Describe(KvmVcpu vcpu, GuestMemory? memory, ReadOnlySpan<byte> knownBytes = default, bool afterPortIo = false)
    {
        try
        {
            vcpu.GetRegs(out KvmRegs regs);
            vcpu.GetSregs(out KvmSregs sregs);
            int bitness = sregs.Cs.L != 0 && (sregs.Efer & 0x400) != 0 ? 64 : sregs.Cs.Db != 0 && (sregs.Cr0 & 1) != 0 ? 32 : 16;
            ulong linear = bitness == 64 ? regs.Rip : sregs.Cs.Base + regs.Rip;
            var sb = new StringBuilder();
            sb.Append($"RIP 0x{regs.Rip:x} ({bitness}-bit, CPL {sregs.Cs.Selector & 3})");
            if (bitness == 64 && (long)regs.Rip << 16 >> 16 != (long)regs.Rip)
            {
                return sb.Append(": a non-canonical address, no instruction there").ToString();
            }
            byte[] code = knownBytes.ToArray();
            bool paging = (sregs.Cr0 & 0x8000_0000) != 0;
            if (code.Length == 0 && memory is not null)
            {
                code = ReadCode(vcpu, memory, linear, paging, 15);
            }
            if (afterPortIo && memory is not null && linear >= 15 && !IsPortInstruction(code, bitness, regs.Rip))
            {
                byte[] before = ReadCode(vcpu, memory, linear - 15, paging, 15);
                if (before.Length == 15 && PortInstructionEndingAt(before, bitness, regs.Rip) is { } io)
                {
                    sb.Append(", just after ").Append(io);
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

    private static byte[] ReadCode(KvmVcpu vcpu, GuestMemory memory, ulong linear, bool paging, int length)
    {
        if ((paging ? vcpu.Translate(linear) : linear) is not { } pa)
        {
            return [];
        }
        byte[] code = new byte[length];
        int n = 0;
        while (n < code.Length && memory.TryRead(pa + (ulong)n, code.AsSpan(n, 1)))
        {
            n++;
        }
        return code[..n];
    }

    private static bool IsPortInstruction(byte[] code, int bitness, ulong ip)
    {
        if (code.Length == 0)
        {
            return false;
        }
        var decoder = Iced.Intel.Decoder.Create(bitness, new ByteArrayCodeReader(code), ip);
        decoder.Decode(out Instruction instruction);
        return !instruction.IsInvalid && IsPort(instruction.Mnemonic);
    }

    private static bool IsPort(Mnemonic m) => m is Mnemonic.In or Mnemonic.Out
        or Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd or Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd;

    /// <summary>The IN/OUT/INS/OUTS instruction that ends exactly where <paramref name="before"/> ends, if one does.</summary>
    private static string? PortInstructionEndingAt(byte[] before, int bitness, ulong rip)
    {
        for (int length = 1; length <= before.Length; length++)
        {
            ulong ip = rip - (ulong)length;
            var decoder = Iced.Intel.Decoder.Create(bitness, new ByteArrayCodeReader(before, before.Length - length, length), ip);
            decoder.Decode(out Instruction instruction);
            if (!instruction.IsInvalid && instruction.Length == length && IsPort(instruction.Mnemonic))
            {
                return $"{Disassemble(before.AsSpan(before.Length - length), bitness, ip)} at 0x{ip:x}";
            }
        }
        return null;
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
