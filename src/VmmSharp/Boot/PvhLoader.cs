using System.Runtime.CompilerServices;
using VmmSharp.Arch.X86;
using VmmSharp.Memory;

namespace VmmSharp.Boot;

/// <summary>
/// Boots an ELF kernel through Xen's PVH entry (the XEN_ELFNOTE_PHYS32_ENTRY note): loads the segments by physical address,
/// writes hvm_start_info (version 1, with the memory map, the command line and the initrd as its one module) and enters
/// in 32-bit protected mode, paging off, with EBX = the start_info address.
/// </summary>
public static class PvhLoader
{
    /// <summary>Loads the PVH kernel of <paramref name="request"/> into <paramref name="memory"/>.</summary>
    /// <exception cref="InvalidKernelImageException">Not an ELF with a PVH note, truncated, or it or the initrd does not fit in RAM.</exception>
    /// <exception cref="ArgumentException">The command line is too long.</exception>
    public static BootResult Load(GuestMemory memory, BootRequest request)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(request);
        ReadOnlySpan<byte> image = request.Kernel.Span;
        ElfImage elf = ElfImage.Parse(image);
        uint entry = elf.FindPvhEntry(image)
            ?? throw new InvalidKernelImageException($"ELF kernel image has no PVH entry note (Xen note type {ElfImage.XenElfNotePhys32Entry}, XEN_ELFNOTE_PHYS32_ENTRY)");
        (ulong start, ulong end) = elf.LoadSegments(memory, image);
        E820Map map = E820Map.FromMemory(memory);

        GuestPlacement.WriteCString(memory, Layout.CommandLine, request.CommandLine, Layout.CommandLineCapacity - 1, "kernel command line");

        var info = new HvmStartInfo
        {
            Magic = HvmStartInfo.MagicValue,
            Version = HvmStartInfo.Version1,
            CommandLineAddress = Layout.CommandLine,
            MemoryMapAddress = Layout.PvhMemoryMap,
            MemoryMapEntries = (uint)map.Entries.Count,
        };

        ulong? initrdAddress = null;
        ulong initrdSize = 0;
        if (!request.Initrd.IsEmpty)
        {
            ReadOnlyMemory<byte> initrd = request.Initrd;
            initrdSize = (ulong)initrd.Length;
            initrdAddress = GuestPlacement.PlaceHigh(map, initrdSize, end, Layout.FourGiB);
            memory.Write(initrdAddress.Value, initrd.Span);
            memory.Write(Layout.PvhModuleList, new HvmModuleListEntry { Address = initrdAddress.Value, Size = initrdSize });
            info.ModuleCount = 1;
            info.ModuleListAddress = Layout.PvhModuleList;
        }

        int entrySize = Unsafe.SizeOf<HvmMemoryMapEntry>();
        if (Layout.PvhMemoryMap + (ulong)(map.Entries.Count * entrySize) > Layout.PvhMemoryMapEnd)
        {
            throw new InvalidOperationException($"a memory map of {map.Entries.Count} entries does not fit the PVH memory map area");
        }
        for (int i = 0; i < map.Entries.Count; i++)
        {
            E820Entry e = map.Entries[i];
            memory.Write(Layout.PvhMemoryMap + (ulong)(i * entrySize), new HvmMemoryMapEntry { Address = e.Address, Size = e.Size, Type = (uint)e.Type });
        }
        memory.Write(Layout.PvhStartInfo, info);

        return new BootResult
        {
            Format = KernelFormat.Pvh,
            EntryState = X86EntryState.Protected32(memory, entry, ebx: (uint)Layout.PvhStartInfo),
            MemoryMap = map,
            KernelStart = start,
            KernelEnd = end,
            BootInfoAddress = Layout.PvhStartInfo,
            CommandLineAddress = Layout.CommandLine,
            InitrdAddress = initrdAddress,
            InitrdSize = initrdSize,
        };
    }
}
