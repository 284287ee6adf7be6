from recbole_sdmtmp.data.dataset import SDMTMPDataset

__all__ = ["SDMTMPDataset"]
