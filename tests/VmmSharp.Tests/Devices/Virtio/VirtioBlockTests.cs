using System.Buffers.Binary;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Block;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Memory;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;
using R = VmmSharp.Devices.Virtio.Mmio.VirtioMmioRegisters;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>virtio-blk over a real image file, driven through the virtio-mmio registers and a hand-built ring.</summary>
public sealed class VirtioBlockTests : IDisposable
{
    private const ulong Header = 0x20000, Data = 0x30000, Status = 0x40000;
    private const uint In = 0, Out = 1, Flush = 4, GetId = 8, Discard = 11, WriteZeroes = 13;
    private const int DiskSize = 1 << 20;

    private readonly string _path = Path.Combine(Path.GetTempPath(), $"vmmsharp-blk-{Guid.NewGuid():N}.img");
    private readonly GuestMemory _memory = GuestMemory.WithRam(4 << 20);
    private VirtioBlock? _disk;
    private VirtioMmioTransport? _transport;
    private TestRing? _ring;
    private ushort _requests;

    public VirtioBlockTests()
    {
        byte[] image = new byte[DiskSize];
        for (int i = 0; i < image.Length; i++)
        {
            image[i] = (byte)(i / 512);
        }
        File.WriteAllBytes(_path, image);
    }

    public void Dispose()
    {
        _transport?.Dispose();
        _disk?.Dispose();
        _memory.Dispose();
        File.Delete(_path);
    }

    [Fact]
    public void The_config_space_gives_capacity_size_max_and_seg_max()
    {
        Start();
        Span<byte> config = stackalloc byte[16];
        _transport!.Read(R.Config, config);
        Assert.Equal((ulong)DiskSize / 512, BinaryPrimitives.ReadUInt64LittleEndian(config));
        Assert.Equal(VirtioBlock.MaxSegmentSize, BinaryPrimitives.ReadUInt32LittleEndian(config[8..]));
        Assert.Equal(VirtioBlock.MaxSegments, BinaryPrimitives.ReadUInt32LittleEndian(config[12..]));
    }

    [Fact]
    public void A_write_lands_in_the_file_and_a_read_brings_it_back()
    {
        Start();
        byte[] pattern = Enumerable.Range(0, 1024).Select(i => (byte)(i * 7)).ToArray();
        _memory.Write(Data, pattern);
        Assert.Equal(0, Submit(Out, 10, (Data, 1024, false)));
        Assert.Equal(pattern, File.ReadAllBytes(_path).AsSpan(10 * 512, 1024).ToArray());

        _memory.Fill(Data, 1024, 0);
        Assert.Equal(0, Submit(In, 10, (Data, 1024, true)));
        byte[] back = new byte[1024];
        _memory.Read(Data, back);
        Assert.Equal(pattern, back);
        Assert.Equal(1024u + 1, _ring!.UsedElement(1).Length);
    }

    [Fact]
    public void A_read_gathers_into_several_buffers()
    {
        Start();
        Assert.Equal(0, Submit(In, 3, (Data, 512, true), (Data + 0x1000, 512, true)));
        Assert.Equal(3, _memory.Read<byte>(Data + 511));
        Assert.Equal(4, _memory.Read<byte>(Data + 0x1000));
    }

    [Fact]
    public void A_read_only_disk_refuses_writes_and_offers_the_ro_feature()
    {
        Start(readOnly: true);
        Assert.NotEqual(0UL, _disk!.DeviceFeatures & BlockFeatures.ReadOnly);
        _memory.Fill(Data, 512, 0xAA);
        Assert.Equal(1, Submit(Out, 0, (Data, 512, false)));
        Assert.Equal(0, File.ReadAllBytes(_path)[0]);
    }

    [Fact]
    public void Flush_succeeds()
    {
        Start();
        Assert.Equal(0, Submit(Flush, 0));
    }

    [Fact]
    public void Get_id_answers_the_serial()
    {
        Start(serial: "disk-42");
        Assert.Equal(0, Submit(GetId, 0, (Data, 20, true)));
        byte[] id = new byte[20];
        _memory.Read(Data, id);
        Assert.Equal("disk-42"u8.ToArray().Concat(new byte[13]), id);
    }

    [Theory]
    [InlineData(Discard, 0u)]
    [InlineData(WriteZeroes, 1u)]
    public void Discard_and_write_zeroes_leave_zeros_where_they_punched(uint type, uint flags)
    {
        Start();
        _memory.Write(Data, 16UL);       // sector 16
        _memory.Write(Data + 8, 16u);    // 16 sectors: 8 KiB, two whole 4 KiB blocks
        _memory.Write(Data + 12, flags);
        Assert.Equal(0, Submit(type, 0, (Data, 16, false)));
        byte[] file = File.ReadAllBytes(_path);
        Assert.All(file.AsSpan(16 * 512, 16 * 512).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(32, file[32 * 512]);     // the sector after is untouched
        Assert.Equal(DiskSize, file.Length);  // and the size kept
    }

    [Fact]
    public void A_request_past_the_end_of_the_disk_is_an_io_error()
    {
        Start();
        Assert.Equal(1, Submit(In, (DiskSize / 512) - 1, (Data, 1024, true)));
    }

    [Fact]
    public void A_sector_that_overflows_is_an_io_error()
    {
        Start();
        Assert.Equal(1, Submit(In, ulong.MaxValue, (Data, 512, true)));
    }

    [Fact]
    public void An_unknown_request_type_is_unsupported()
    {
        Start();
        Assert.Equal(2, Submit(99, 0));
    }

    [Fact]
    public void A_header_of_the_wrong_size_is_an_io_error()
    {
        Start();
        _ring!.SetDescriptor(0, Header, 8, D.FlagNext, 1);
        _ring.SetDescriptor(1, Status, 1, D.FlagWrite);
        Assert.Equal(1, Run(0));
    }

    [Fact]
    public void A_request_without_a_status_byte_makes_the_device_need_a_reset()
    {
        Start();
        WriteHeader(In, 0);
        _ring!.SetDescriptor(0, Header, 16);
        _ring.Offer(0);
        _transport!.OnNotifyEvent();
        Assert.True(SpinWait.SpinUntil(() => _disk!.NeedsReset, TimeSpan.FromSeconds(10)));
        Assert.NotEqual(0u, Read(R.Status) & (uint)VirtioStatus.DeviceNeedsReset);
    }

    [Fact]
    public void Adjacent_reads_and_writes_offered_together_each_get_their_own_sectors()
    {
        Start();
        // Four 1 KiB writes of sectors 8-15 (adjacent: merged into one pwritev), then four reads back (one preadv).
        for (int r = 0; r < 4; r++)
        {
            _memory.Fill(Data + ((ulong)r * 0x1000), 1024, (byte)(0xa0 + r));
        }
        OfferTogether(Out, 8);
        byte[] file = File.ReadAllBytes(_path);
        for (int r = 0; r < 4; r++)
        {
            Assert.All(file.AsSpan((8 + (2 * r)) * 512, 1024).ToArray(), b => Assert.Equal((byte)(0xa0 + r), b));
        }
        _memory.Fill(Data, 0x4000, 0);
        OfferTogether(In, 8);
        for (int r = 0; r < 4; r++)
        {
            Assert.Equal((byte)(0xa0 + r), _memory.Read<byte>(Data + ((ulong)r * 0x1000) + 1023));
            Assert.Equal(0, _memory.Read<byte>(Status + (ulong)r));
        }
        Assert.Equal(1024u + 1, _ring!.UsedElement(_requests - 1).Length);
    }

    /// <summary>Four 1 KiB requests of <paramref name="type"/> from <paramref name="sector"/> on, offered before one notification.</summary>
    private void OfferTogether(uint type, ulong sector)
    {
        for (int r = 0; r < 4; r++)
        {
            ulong header = Header + ((ulong)r * 16);
            _memory.Write(header, type);
            _memory.Write(header + 4, 0u);
            _memory.Write(header + 8, sector + (2 * (ulong)r));
            _memory.Write(Status + (ulong)r, (byte)0xff);
            int d = r * 3;
            _ring!.SetDescriptor(d, header, 16, D.FlagNext, (ushort)(d + 1));
            _ring.SetDescriptor(d + 1, Data + ((ulong)r * 0x1000), 1024, (ushort)(D.FlagNext | (type == In ? D.FlagWrite : 0)), (ushort)(d + 2));
            _ring.SetDescriptor(d + 2, Status + (ulong)r, 1, D.FlagWrite);
            _ring.Offer((ushort)d);
        }
        _requests += 4;
        ushort expected = _requests;
        _transport!.OnNotifyEvent();
        Assert.True(SpinWait.SpinUntil(() => _ring!.UsedIdx == expected, TimeSpan.FromSeconds(10)), "the disk's worker did not complete the requests");
        for (int r = 0; r < 4; r++)
        {
            Assert.Equal(0, _memory.Read<byte>(Status + (ulong)r));
        }
    }

    private void Start(bool readOnly = false, string? serial = null)
    {
        _disk = new VirtioBlock(_path, readOnly, serial);
        _transport = new VirtioMmioTransport(_disk, _memory, 0xd000_0000, new RecordingIrqLine());
        new MmioDriver(_transport).Start();
        _ring = new TestRing(_memory, _disk.Queues[0], activate: false);
    }

    private uint Read(uint offset) => new MmioDriver(_transport!).Read(offset);

    private void WriteHeader(uint type, ulong sector)
    {
        _memory.Write(Header, type);
        _memory.Write(Header + 4, 0u);
        _memory.Write(Header + 8, sector);
    }

    /// <summary>Header, the given data buffers, status; returns the status byte the device wrote.</summary>
    private int Submit(uint type, ulong sector, params (ulong Address, uint Length, bool Write)[] data)
    {
        WriteHeader(type, sector);
        int base0 = (_requests * 8) % 16;
        _ring!.SetDescriptor(base0, Header, 16, D.FlagNext, (ushort)(base0 + 1));
        for (int i = 0; i < data.Length; i++)
        {
            _ring.SetDescriptor(base0 + 1 + i, data[i].Address, data[i].Length,
                (ushort)(D.FlagNext | (data[i].Write ? D.FlagWrite : 0)), (ushort)(base0 + 2 + i));
        }
        _ring.SetDescriptor(base0 + 1 + data.Length, Status, 1, D.FlagWrite);
        return Run((ushort)base0);
    }

    private int Run(ushort head)
    {
        _memory.Write(Status, (byte)0xff);
        _ring!.Offer(head);
        ushort expected = ++_requests;
        _transport!.OnNotifyEvent();
        Assert.True(SpinWait.SpinUntil(() => _ring.UsedIdx == expected, TimeSpan.FromSeconds(10)), "the disk's worker did not complete the request");
        return _memory.Read<byte>(Status);
    }
}
