using VmmSharp.Boot;
using VmmSharp.Fuzz.Support;

namespace VmmSharp.Fuzz.Targets.Boot;

/// <summary>
/// KernelLoader's whole path, as `vmm run --kernel` takes it: detection, the matching loader, then the MP and ACPI
/// tables for the CPU count, into RAM of the size the <see cref="BootInput"/> prefix chooses.
/// </summary>
internal sealed class KernelLoadTarget : IFuzzTarget
{
    public string Name => "kernel-load";

    public void Run(ReadOnlySpan<byte> input) => BootInput.Parse(input).LoadAndCheck(KernelLoader.Load);

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("pvh.bin", BootInput.Encode(SeedImages.PvhElf(), cpus: 2, initrdLength: 0x800));
        yield return ("multiboot-elf.bin", BootInput.Encode(SeedImages.MultibootElf(), cpus: 4));
        yield return ("multiboot-kludge.bin", BootInput.Encode(SeedImages.MultibootKludge(), initrdLength: 0x100));
        yield return ("bzimage.bin", BootInput.Encode(SeedImages.BzImage(), memoryStep: 250, cpus: 8, initrdLength: 0x1000));
    }
}
