using VmmSharp.Arch.X86;
using VmmSharp.Boot;
using VmmSharp.Fuzz.Support;
using VmmSharp.Memory;

namespace VmmSharp.Fuzz.Targets.Boot;

/// <summary>The ELF parser: headers, the PVH note search, the entry translation and loading the segments into 4 MiB of RAM.</summary>
internal sealed class ElfTarget : IFuzzTarget
{
    public string Name => "elf";

    public void Run(ReadOnlySpan<byte> input)
    {
        using var memory = new GuestMemory(Layout.RamRegions(4 << 20));
        try
        {
            ElfImage elf = ElfImage.Parse(input);
            elf.FindPvhEntry(input);
            elf.PhysicalEntry();
            (ulong start, ulong end) = elf.LoadSegments(memory, input);
            FuzzCheckException.Check(start < end && memory.Contains(start, end - start), $"segments loaded at [0x{start:x}, 0x{end:x}) are not all in RAM");
        }
        catch (InvalidKernelImageException e)
        {
            Rejection.Note(e);
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("pvh64.elf", SeedImages.PvhElf());
        yield return ("pvh32-note.elf", SeedImages.PvhElf(noteWidth: 4));
        yield return ("multiboot32.elf", SeedImages.MultibootElf());
        yield return ("bss.elf", SeedImages.Elf(false, SeedImages.MachineI386, SeedImages.LoadAddress,
            SeedImages.Load(SeedImages.Code, 0x8000), SeedImages.Load([1, 2, 3, 4], 0x100, SeedImages.LoadAddress + 0x10000)));
    }
}
